// Row codec: Subscription, Customer (with pending lines) and issued-invoice rows as packed Cap'n
// Proto messages (projections/rows.capnp). The generated types stay inside row_codec.cpp.
// Pure functions; decoders return nullopt for bytes that are not such a row. Safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "projections/catalog.h"
#include "projections/ledger_state.h"

namespace subledger {

std::string encode_subscription(const Subscription& sub);
std::optional<Subscription> decode_subscription(std::string_view bytes);
// What a billing run reads of every subscription's row before it decides (Ledger::run_billing
// over rows on disk): whether time brings it a transition, and where it sits.
struct SubscriptionDue {
  std::string id, customer_id, offer_id;
  uint64_t ordinal = 0;
  Status status = Status::kTrial;
  Date trial_end, term_end, last_event_date;
  // Whether a transition is due on or before `d` (ledger/decide.cpp, due_transitions).
  bool due_by(Date d) const { return transition_due_by(status, trial_end, term_end, d); }
};
std::optional<SubscriptionDue> decode_subscription_due(std::string_view bytes);

std::string encode_issued_invoice(const IssuedInvoice& issued);
std::optional<IssuedInvoice> decode_issued_invoice(std::string_view bytes);

// A customer's own row (CustomerRow: projections/ledger_state.h): the customer, its stream's
// version and how many rows it has under its key (its subscriptions, its pending lines), not the
// lists themselves; decoded, the lists are empty (the rows under it fill them: add_customer_row).
std::string encode_customer(const Customer& customer, uint64_t version,
                            uint32_t subscription_count, uint32_t pending_count,
                            uint64_t next_line);
std::optional<CustomerRow> decode_customer(std::string_view bytes);
// Only the partner a customer's own row names (nullopt: not such a row).
std::optional<std::string> decode_customer_partner(std::string_view bytes);

// One pending charge line (a row under its customer's).
std::string encode_charge_line(const ChargeLine& line);
std::optional<ChargeLine> decode_charge_line(std::string_view bytes);
// Only a pending line's charge date (nullopt: not such a row).
std::optional<Date> decode_charge_line_date(std::string_view bytes);

}  // namespace subledger
