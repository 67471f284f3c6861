// ChargeLine: one priced line of an invoice, derived from the log by the subscription projection.
//
// A line keeps the inputs of its formula (price, months or days, seats, currency digits) and the
// sequence number of the event that caused it, so `explain` can show how it was computed and
// replay can regenerate it exactly. Amounts are rounded once per line (BILLING_RULES 3).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "events/date.h"
#include "events/event.h"
#include "events/money.h"

namespace subledger {

enum class ChargeType : uint8_t {
  kPurchase,    // PRORATE_FEES_WHEN_PURCHASE
  kCycle,       // CYCLE_FEE
  kSeatChange,  // CYCLE_INSTANCE_PRORATE
  kCancel,      // CANCEL_FEE
  kRenew,       // RENEW_FEE
  kActivation,  // ACTIVATION_FEE
};
std::string_view to_string(ChargeType type);

struct ChargeLine {
  std::string subscription_id, offer_id;
  ChargeType type = ChargeType::kPurchase;
  Date period_start, period_end, charge_date;
  uint32_t seats = 0;
  int64_t unit_price_micros = 0;
  int64_t amount_minor = 0;
  Frequency frequency = Frequency::kMonthly;
  uint64_t event_seq = 0;       // the event that caused the line
  uint32_t order_in_event = 0;  // a credit comes before the rebill it pairs with
  // The formula's inputs: months (whole-month charge), days (proration), or the number of lines
  // a within-30-days cancellation reverses.
  FormulaKind formula = FormulaKind::kWholeMonths;
  int32_t quantity = 0;
  int8_t currency_digits = 2;
  bool negated = false;  // a credit: computed like a charge of the same inputs, then negated
  // For a reversal (BILLING_RULES 6): the net sum it negates, so explain can show it.
  int64_t reversed_net_minor = 0;
  // BILLING_RULES 12: the promotion of the line's term ("" and 0: none). Every formula but a
  // reversal (already the net of discounted lines) is multiplied by (100 - percent_off) / 100.
  std::string promotion_id{};
  uint8_t percent_off = 0;
};

// The exact, unrounded amount of the line's formula (a reversal is already exact).
ExactAmount exact_amount(const ChargeLine& line);

// Invoice order (INTERFACE.md): charge date, then event sequence, then the order in the event.
bool invoice_order(const ChargeLine& a, const ChargeLine& b);

}  // namespace subledger
