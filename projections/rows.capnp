# Projection rows (see projections/projection_rows.h): the ledger's state stored beside the log.
#
# Rebuildable from the log: a change here bumps kProjectionFormat, and older rows are then ignored
# and rebuilt on open. Dates are days since 1970-01-01 (-2147483648 = none). Stored packed.

@0xb7f1e3c2a9d84f61;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("subledger::rows");

struct Term {
  start @0 :Int32;
  anchor @1 :Int32;
  end @2 :Int32;
  priceMicros @3 :Int64;
  promotionId @4 :Text;      # BILLING_RULES 12; older rows read as none, which is exact
  percentOff @5 :UInt8;
}

struct StatusMark {
  date @0 :Int32;
  status @1 :UInt8;
  cancelledOn @2 :Int32;
}

struct Subscription {
  id @0 :Text;
  customerId @1 :Text;
  offerId @2 :Text;
  parentId @3 :Text;
  currency @4 :Text;
  status @5 :UInt8;
  frequency @6 :UInt8;
  seats @7 :UInt32;
  term @8 :Term;
  paid @9 :Bool;
  autoRenew @10 :Bool;
  cancelledInTrial @11 :Bool;
  createdOn @12 :Int32;
  trialEnd @13 :Int32;
  cancelledOn @14 :Int32;
  expiredOn @15 :Int32;
  lastEventDate @16 :Int32;
  version @17 :UInt64;
  termEventSeq @18 :UInt64;
  nextCycle @19 :Int32;
  termNetMinor @20 :Int64;
  termLinesStart @21 :Int32;
  termLinesEnd @22 :Int32;
  currencyDigits @23 :Int8;
  ordinal @24 :UInt64;
  statusMarks @25 :List(StatusMark);  # added after format 3: an older row reads as none (it is
                                      # rebuilt from the log when compared: see row_codec.cpp)
}

struct ChargeLine {
  subscriptionId @0 :Text;
  offerId @1 :Text;
  type @2 :UInt8;
  periodStart @3 :Int32;
  periodEnd @4 :Int32;
  chargeDate @5 :Int32;
  seats @6 :UInt32;
  unitPriceMicros @7 :Int64;
  amountMinor @8 :Int64;
  frequency @9 :UInt8;
  eventSeq @10 :UInt64;
  orderInEvent @11 :UInt32;
  formula @12 :UInt8;
  quantity @13 :Int32;
  currencyDigits @14 :Int8;
  negated @15 :Bool;
  reversedNetMinor @16 :Int64;
  promotionId @17 :Text;
  percentOff @18 :UInt8;
}

struct Invoice {
  invoiceId @0 :Text;
  partnerId @1 :Text;
  customerId @2 :Text;
  invoiceDate @3 :Int32;
  currency @4 :Text;
  currencyDigits @5 :Int8;
  totalMinor @6 :Int64;
  lineCount @7 :UInt32;
  lines @8 :List(ChargeLine);
  linesSha256 @9 :Data;
  eventSeq @10 :UInt64;      # the InvoiceIssued event
  chainHead @11 :Data;       # the chain head it was issued at
}

struct Agreement {
  agreementType @0 :Text;
  dateAgreed @1 :Int32;
  firstName @2 :Text;
  lastName @3 :Text;
  email @4 :Text;
  eventSeq @5 :UInt64;
}

struct Customer {
  customerId @0 :Text;
  partnerId @1 :Text;
  country @2 :Text;
  currency @3 :Text;
  companyName @4 :Text;
  organizationRegistrationNumber @5 :Text;
  phone @6 :Text;
  middleName @7 :Text;
  subscriptions @8 :List(Text);   # projection format 4 and before: since format 5 each is a row
                                  # of its own (projections/projection_rows.h); always empty
  trialOffers @9 :List(Text);
  version @10 :UInt64;            # the customer stream's version
  pending @11 :List(ChargeLine);  # likewise: since format 5 a row per pending line; always empty
  agreements @12 :List(Agreement);  # added after format 2: older rows read as none, which is
                                    # exact (no older log holds an AgreementAccepted)
  segment @13 :UInt8;               # BILLING_RULES 13: older rows read as commercial, exact
  subscriptionCount @14 :UInt32;    # how many subscription rows the customer has under its key
  pendingCount @15 :UInt32;         # how many pending-line rows
  nextLine @16 :UInt64;             # the number its next pending line gets (numbers never reused)
}
