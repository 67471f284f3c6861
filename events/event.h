// Event: one immutable fact of the ledger's log, as plain C++ values.
//
// Every event has an envelope (global gap-free sequence number, its stream and version in that
// stream, effective date, recorded-at time, actor, request id) and one payload. Payloads record
// what was decided (locked price, currency, anchor, term end, trial end) so that replaying them
// never re-decides anything with newer code. The generated Cap'n Proto types never leave events/:
// codec.h converts between these structs and stored bytes.
// Pure values; safe to copy between threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "events/date.h"

namespace subledger {

// PERSISTED through events.capnp: keep the numeric values in step with the schema.
enum class StreamKind : uint8_t {
  kSubscription = 0,
  kCustomer = 1,
  kPartner = 2,
  kOffer = 3,
  kLedger = 4,
  kPromotion = 5
};
enum class Frequency : uint8_t { kMonthly = 0, kAnnual = 1 };
enum class Segment : uint8_t { kCommercial = 0, kEducation = 1, kGovernment = 2, kNonprofit = 3 };

// BILLING_RULES 14: the term lengths an offer may have.
inline constexpr int kDefaultTermMonths = 12;
// BILLING_RULES 12: exclude_cancel_days when a promotion does not say.
inline constexpr int kDefaultExcludeCancelDays = 30;
inline constexpr int kExcludeCancelDaysMax = 3650;
inline constexpr int kLongTermMonths = 36;

std::string_view to_string(StreamKind kind);
std::string_view to_string(Frequency frequency);
std::string_view to_string(Segment segment);

// A paid term as decided when it began (BILLING_RULES 2).
struct Term {
  Date start;   // purchase, conversion or renewal date
  Date anchor;  // start, or the 1st of the following month for a 29th..31st
  Date end;     // anchor + the offer's term_months (BILLING_RULES 14)
  int64_t price_micros = 0;
  // BILLING_RULES 12: the promotion locked into the term when it began ("" and 0: none).
  std::string promotion_id{};
  int percent_off = 0;
  friend bool operator==(const Term&, const Term&) = default;
};

struct PartnerRegistered {
  std::string partner_id, country, currency;
  int billing_day = 0;
  friend bool operator==(const PartnerRegistered&, const PartnerRegistered&) = default;
};
struct CustomerCreated {
  std::string customer_id, partner_id, country, currency, company_name,
      organization_registration_number, phone, middle_name;
  Segment segment = Segment::kCommercial;  // BILLING_RULES 13
  friend bool operator==(const CustomerCreated&, const CustomerCreated&) = default;
};
struct OfferDefined {
  std::string offer_id, name;
  Segment segment = Segment::kCommercial;
  bool trial_eligible = false;
  std::vector<std::string> addon_of;
  uint32_t max_seats = 0, max_per_customer = 0;
  std::vector<std::string> markets{};    // customer countries; empty = every market (RULES 13)
  int term_months = kDefaultTermMonths;  // 12 or 36 (BILLING_RULES 14)
  friend bool operator==(const OfferDefined&, const OfferDefined&) = default;
};
struct PricePublished {
  std::string offer_id, currency;
  int64_t monthly_price_micros = 0;
  Date effective_from;
  friend bool operator==(const PricePublished&, const PricePublished&) = default;
};
struct SubscriptionCreated {
  std::string subscription_id, customer_id, offer_id, parent_subscription_id;
  uint32_t seats = 0;
  Frequency frequency = Frequency::kMonthly;
  Term term;
  std::string currency;
  friend bool operator==(const SubscriptionCreated&, const SubscriptionCreated&) = default;
};
struct TrialStarted {
  std::string subscription_id, customer_id, offer_id;
  uint32_t seats = 0;
  Date trial_end;
  friend bool operator==(const TrialStarted&, const TrialStarted&) = default;
};
struct TrialConverted {
  std::string subscription_id;
  Frequency frequency = Frequency::kMonthly;
  Term term;
  std::string currency;
  friend bool operator==(const TrialConverted&, const TrialConverted&) = default;
};
struct TrialExpired {
  std::string subscription_id;
  friend bool operator==(const TrialExpired&, const TrialExpired&) = default;
};
struct SeatsChanged {
  std::string subscription_id;
  uint32_t old_seats = 0, new_seats = 0;
  friend bool operator==(const SeatsChanged&, const SeatsChanged&) = default;
};
struct SubscriptionCancelled {
  std::string subscription_id, cascaded_from;
  friend bool operator==(const SubscriptionCancelled&, const SubscriptionCancelled&) = default;
};
struct SubscriptionReactivated {
  std::string subscription_id;
  friend bool operator==(const SubscriptionReactivated&, const SubscriptionReactivated&) = default;
};
struct AutoRenewSet {
  std::string subscription_id;
  bool enabled = true;
  friend bool operator==(const AutoRenewSet&, const AutoRenewSet&) = default;
};
struct SubscriptionRenewed {
  std::string subscription_id;
  bool manual = false;
  Term term;
  friend bool operator==(const SubscriptionRenewed&, const SubscriptionRenewed&) = default;
};
struct SubscriptionExpired {
  std::string subscription_id;
  friend bool operator==(const SubscriptionExpired&, const SubscriptionExpired&) = default;
};
struct BillingRun {
  Date through, previous_clock;
  uint32_t invoices_issued = 0;
  friend bool operator==(const BillingRun&, const BillingRun&) = default;
};
struct InvoiceIssued {
  std::string invoice_id, customer_id, partner_id;
  Date invoice_date;
  std::string currency;
  int64_t total_minor = 0;
  uint32_t line_count = 0;
  std::string lines_sha256;  // 32 raw bytes
  std::string chain_head;    // the log's chain head when issued: the event's prev_hash
  friend bool operator==(const InvoiceIssued&, const InvoiceIssued&) = default;
};

// BILLING_RULES 12.
struct PromotionDefined {
  std::string promotion_id;
  std::vector<std::string> offer_ids;
  int percent_off = 0;
  Date purchase_from, purchase_to;  // both days included
  bool applies_to_new = false, applies_to_renewal = false;
  std::vector<std::string> markets;  // customer countries; empty = every market
  uint32_t max_seats = 0;            // 0 = no cap
  bool new_customer_only = false;
  std::vector<std::string> exclude_offers;
  int exclude_cancel_days = kDefaultExcludeCancelDays;
  friend bool operator==(const PromotionDefined&, const PromotionDefined&) = default;
};

// BILLING_RULES 13: the offer cannot be bought from `retired_on` on.
struct OfferRetired {
  std::string offer_id;
  Date retired_on;
  friend bool operator==(const OfferRetired&, const OfferRetired&) = default;
};

// BILLING_RULES 15: the updatable fields of a customer as they are after the update.
struct CustomerUpdated {
  std::string customer_id, company_name, organization_registration_number, phone, middle_name;
  Segment segment = Segment::kCommercial;
  friend bool operator==(const CustomerUpdated&, const CustomerUpdated&) = default;
};

struct AgreementAccepted {
  std::string customer_id, agreement_type;
  Date date_agreed;
  std::string first_name, last_name, email;  // the contact: personal data
  friend bool operator==(const AgreementAccepted&, const AgreementAccepted&) = default;
};

using EventPayload =
    std::variant<PartnerRegistered, CustomerCreated, OfferDefined, PricePublished,
                 SubscriptionCreated, TrialStarted, TrialConverted, TrialExpired, SeatsChanged,
                 SubscriptionCancelled, SubscriptionReactivated, AutoRenewSet, SubscriptionRenewed,
                 SubscriptionExpired, BillingRun, InvoiceIssued, AgreementAccepted,
                 PromotionDefined, OfferRetired, CustomerUpdated>;

// The type name shown in audits and accepted by `log --type`.
std::string_view event_type_name(const EventPayload& payload);
// Every event type name, in the variant's order.
std::vector<std::string> event_type_names();

struct Stream {
  StreamKind kind = StreamKind::kLedger;
  std::string id;
  friend bool operator==(const Stream&, const Stream&) = default;
};
// The stream an event of this payload belongs to.
Stream stream_of(const EventPayload& payload);
// The subscription a payload is about, or nullptr for a catalog, billing or invoice event.
const std::string* subscription_id_of(const EventPayload& payload);
// The customer named by a payload that opens a subscription stream (created, trial started).
const std::string* opening_customer_of(const EventPayload& payload);
// The customer a payload outside any subscription's stream is about (created, updated, an
// agreement, an invoice), or nullptr (the catalog, a billing run).
const std::string* customer_named_by(const EventPayload& payload);

struct Event {
  uint64_t seq = 0;
  Stream stream;
  uint64_t stream_version = 0;
  Date effective_date;             // none for catalog events without a date
  int64_t recorded_at_micros = 0;  // wall clock, for audits only: never read by a rule
  std::string actor, request_id;
  EventPayload payload;
  std::string prev_hash;  // the previous event's hash ("" for the first event)
  // On the first event of each command: the SHA-256 of the command's canonical payload, so the
  // command's idempotency record can be derived from the log. "" on every other event (and on
  // events written before on-disk format 3).
  std::string command_hash;
  std::string hash;       // SHA-256 of this event's message: the stored trailer, not in the message
  friend bool operator==(const Event&, const Event&) = default;
};

inline constexpr std::string_view kSystemActor = "system";

}  // namespace subledger
