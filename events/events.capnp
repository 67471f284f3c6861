# The persisted event schema of the subledger log.
#
# PERSISTED: this is an on-disk format. Never renumber a field or an enumerant, never reuse a
# number, never change a field's type. Add new fields and union members at the end only.
#
# Dates are YYYYMMDD integers (0 = none). Prices are micro-units (10^-6 of the currency's major
# unit). Amounts are minor units of the invoice currency.

@0xd6cb5505d45f6f04;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("subledger::schema");

enum StreamKind {
  subscription @0;
  customer @1;
  partner @2;
  offer @3;
  ledger @4;
  promotion @5;
}

enum Frequency {
  monthly @0;
  annual @1;
}

enum Segment {
  commercial @0;
  education @1;
  government @2;
  nonprofit @3;
}

struct PartnerRegistered {
  partnerId @0 :Text;
  country @1 :Text;
  currency @2 :Text;
  billingDay @3 :UInt8;
}

struct CustomerCreated {
  customerId @0 :Text;
  partnerId @1 :Text;
  country @2 :Text;
  currency @3 :Text;
  companyName @4 :Text;
  organizationRegistrationNumber @5 :Text;
  phone @6 :Text;
  middleName @7 :Text;
  segment @8 :Segment;      # BILLING_RULES 13; older events read as commercial, their only value
}

struct OfferDefined {
  offerId @0 :Text;
  name @1 :Text;
  segment @2 :Segment;
  trialEligible @3 :Bool;
  addonOf @4 :List(Text);
  maxSeats @5 :UInt32;
  maxPerCustomer @6 :UInt32;
  markets @7 :List(Text);   # customer countries it is sold in; empty = every market
  termMonths @8 :UInt8;     # 12 or 36; 0 (older events) reads as 12
}

struct PricePublished {
  offerId @0 :Text;
  currency @1 :Text;
  monthlyPriceMicros @2 :Int64;
  effectiveFrom @3 :UInt32;
}

# A paid term as decided when it began: the rules are never re-decided on replay.
struct Term {
  start @0 :UInt32;        # the date the term begins (purchase, conversion or renewal date)
  anchor @1 :UInt32;       # start, or the 1st of the next month for a 29th..31st start
  end @2 :UInt32;          # anchor + 12 months
  priceMicros @3 :Int64;   # the locked monthly price per seat
  promotionId @4 :Text;    # the promotion locked into the term (BILLING_RULES 12), or empty
  percentOff @5 :UInt8;    # its percentage, 1..100; 0 without a promotion
}

struct SubscriptionCreated {
  subscriptionId @0 :Text;
  customerId @1 :Text;
  offerId @2 :Text;
  parentSubscriptionId @3 :Text;
  seats @4 :UInt32;
  frequency @5 :Frequency;
  term @6 :Term;
  currency @7 :Text;       # the invoice currency, decided at purchase
}

struct TrialStarted {
  subscriptionId @0 :Text;
  customerId @1 :Text;
  offerId @2 :Text;
  seats @3 :UInt32;
  trialEnd @4 :UInt32;
}

struct TrialConverted {
  subscriptionId @0 :Text;
  frequency @1 :Frequency;
  term @2 :Term;
  currency @3 :Text;
}

struct TrialExpired {
  subscriptionId @0 :Text;
}

struct SeatsChanged {
  subscriptionId @0 :Text;
  oldSeats @1 :UInt32;
  newSeats @2 :UInt32;
}

struct SubscriptionCancelled {
  subscriptionId @0 :Text;
  cascadedFrom @1 :Text;   # the parent whose cancellation cancelled this add-on, or empty
}

struct SubscriptionReactivated {
  subscriptionId @0 :Text;
}

struct AutoRenewSet {
  subscriptionId @0 :Text;
  enabled @1 :Bool;
}

struct SubscriptionRenewed {
  subscriptionId @0 :Text;
  manual @1 :Bool;
  term @2 :Term;
}

struct SubscriptionExpired {
  subscriptionId @0 :Text;
}

struct BillingRun {
  through @0 :UInt32;
  previousClock @1 :UInt32;
  invoicesIssued @2 :UInt32;
}

struct InvoiceIssued {
  invoiceId @0 :Text;
  customerId @1 :Text;
  partnerId @2 :Text;
  invoiceDate @3 :UInt32;
  currency @4 :Text;
  totalMinor @5 :Int64;
  lineCount @6 :UInt32;
  linesSha256 @7 :Data;    # SHA-256 of the invoice's canonical lines
  chainHead @8 :Data;      # the log's chain head when the invoice was issued (= Event.prevHash)
}

# A customer's acceptance of a customer agreement. The contact is personal data: partner-facing
# audit records leave it out.
struct AgreementAccepted {
  customerId @0 :Text;
  agreementType @1 :Text;
  dateAgreed @2 :UInt32;
  firstName @3 :Text;
  lastName @4 :Text;
  email @5 :Text;
}

# BILLING_RULES 12: a percentage off offers for terms starting inside a purchase window.
struct PromotionDefined {
  promotionId @0 :Text;
  offerIds @1 :List(Text);
  percentOff @2 :UInt8;
  purchaseFrom @3 :UInt32;
  purchaseTo @4 :UInt32;
  appliesToNew @5 :Bool;
  appliesToRenewal @6 :Bool;
  markets @7 :List(Text);
  maxSeats @8 :UInt32;
  newCustomerOnly @9 :Bool;
  excludeOffers @10 :List(Text);
  excludeCancelDays @11 :UInt16;
}

# BILLING_RULES 13: no purchase of the offer from `retiredOn` on (a later retirement replaces it).
struct OfferRetired {
  offerId @0 :Text;
  retiredOn @1 :UInt32;
}

# BILLING_RULES 15: the customer's updatable fields as they are after the update.
struct CustomerUpdated {
  customerId @0 :Text;
  companyName @1 :Text;
  organizationRegistrationNumber @2 :Text;
  phone @3 :Text;
  middleName @4 :Text;
  segment @5 :Segment;
}

struct Event {
  seq @0 :UInt64;
  streamKind @1 :StreamKind;
  streamId @2 :Text;
  streamVersion @3 :UInt64;
  effectiveDate @4 :UInt32;
  recordedAtMicros @5 :Int64;   # wall clock: shown in audits, never read by a rule
  actor @6 :Text;
  requestId @7 :Text;
  payload :union {
    partnerRegistered @8 :PartnerRegistered;
    customerCreated @9 :CustomerCreated;
    offerDefined @10 :OfferDefined;
    pricePublished @11 :PricePublished;
    subscriptionCreated @12 :SubscriptionCreated;
    trialStarted @13 :TrialStarted;
    trialConverted @14 :TrialConverted;
    trialExpired @15 :TrialExpired;
    seatsChanged @16 :SeatsChanged;
    subscriptionCancelled @17 :SubscriptionCancelled;
    subscriptionReactivated @18 :SubscriptionReactivated;
    autoRenewSet @19 :AutoRenewSet;
    subscriptionRenewed @20 :SubscriptionRenewed;
    subscriptionExpired @21 :SubscriptionExpired;
    billingRun @22 :BillingRun;
    invoiceIssued @23 :InvoiceIssued;
    agreementAccepted @25 :AgreementAccepted;  # after prevHash @24: ordinals are never renumbered
    promotionDefined @26 :PromotionDefined;
    offerRetired @27 :OfferRetired;
    customerUpdated @28 :CustomerUpdated;
  }
  prevHash @24 :Data;           # hash of the previous event's stored value (zero-length for seq 1)
  commandHash @29 :Data;        # on the first event of each command: SHA-256 of its canonical
                                # payload (ledger/command.h payload_hash), zero-length on the rest;
                                # the idempotency record is derived from it (format 3)
  # The stored value is this message followed by 32 bytes: SHA-256 of the message bytes. Each
  # message holds the previous hash, so the trailers form a chain (see events/codec.h).
}
