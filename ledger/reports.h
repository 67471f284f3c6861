// Reports the CLI prints and the server answers, rendered in one place: `renewals`, `explain`'s
// lines and orders (the subscriptions one request opened). Read-only.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ledger/store.h"
#include "projections/ledger_state.h"

namespace subledger {

// `renewals`: active subscriptions (those `keep` accepts, all when empty) whose term ends in
// [from, to], with the price they will renew at; by term end, then id. One JSON object each.
std::vector<std::string> renewal_lines(
    const LedgerState& state, Date from, Date to,
    const std::function<bool(const Subscription&)>& keep = {});
// The same among `subscription_ids` only (a partner's): the work grows with them, not the ledger.
std::vector<std::string> renewal_lines(const LedgerState& state, Date from, Date to,
                                       const std::vector<std::string>& subscription_ids);

// `explain`: each line of the invoice with the event that caused it and the formula's inputs.
// Unavailable when a causing event cannot be read.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> explain_lines(const Store& store,
                                                                     const IssuedInvoice& issued);

// One line of an order: what a create_subscription or start_trial asked for.
struct OrderLine {
  std::string subscription_id, offer_id, parent_subscription_id;
  uint32_t seats = 0;
  std::optional<Frequency> frequency;  // none for a trial
  bool trial = false;
};
// The order `id` (the request that opened its subscriptions) as SERVER.md answers it; `scope`
// (a partner's "PARTNER:") is taken off the ids that begin with it, as the server shows them.
std::string order_json(const std::string& id, const std::string& customer_id, Date date,
                       const std::vector<OrderLine>& lines, std::string_view scope = {});
// The order line an opening event (SubscriptionCreated, TrialStarted) records; nullopt otherwise.
std::optional<OrderLine> order_line_of(const Event& opening);
// The orders that opened `subscription_ids` (a customer's, in the order it opened them): grouped
// by the request that opened them (a group member's request id is `<id>#<n>`), in order of their
// first line, read from the subscriptions' opening events through the stream index. A
// subscription whose opening event is not durable yet is left out. Unavailable when an event
// cannot be read.
struct Order {
  std::string id;  // the request id that opened its subscriptions
  Date date;
  std::vector<OrderLine> lines;
};
[[nodiscard]] absl::StatusOr<std::vector<Order>> orders_of(
    const Store& store, const std::vector<std::string>& subscription_ids);

}  // namespace subledger
