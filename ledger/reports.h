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
// The order `id` (the request that opened its subscriptions) as SERVER.md answers it.
std::string order_json(const std::string& id, const std::string& customer_id, Date date,
                       const std::vector<OrderLine>& lines);
// The order line an opening event (SubscriptionCreated, TrialStarted) records; nullopt otherwise.
std::optional<OrderLine> order_line_of(const Event& opening);

}  // namespace subledger
