#include "projections/charge_line.h"

#include <tuple>

namespace subledger {

std::string_view to_string(ChargeType type) {
  switch (type) {
    case ChargeType::kPurchase:
      return "PRORATE_FEES_WHEN_PURCHASE";
    case ChargeType::kCycle:
      return "CYCLE_FEE";
    case ChargeType::kSeatChange:
      return "CYCLE_INSTANCE_PRORATE";
    case ChargeType::kCancel:
      return "CANCEL_FEE";
    case ChargeType::kRenew:
      return "RENEW_FEE";
    case ChargeType::kActivation:
      return "ACTIVATION_FEE";
  }
  return "?";
}

ExactAmount exact_amount(const ChargeLine& line) {
  ExactAmount a;
  switch (line.formula) {
    case FormulaKind::kWholeMonths:
      a = whole_months_amount(line.unit_price_micros, line.quantity, static_cast<int>(line.seats),
                              line.currency_digits);
      break;
    case FormulaKind::kDays:
      a = prorated_days_amount(line.unit_price_micros, line.quantity, static_cast<int>(line.seats),
                               line.currency_digits);
      break;
    case FormulaKind::kReversal:
      return ExactAmount{line.amount_minor, 1};
  }
  if (line.percent_off != 0) {
    // BILLING_RULES 12: round(exact x (100 - p) / 100), the one rounding still to come.
    constexpr int kWhole = 100;
    a.numerator *= kWhole - line.percent_off;
    a.denominator *= kWhole;
  }
  if (line.negated) a.numerator = -a.numerator;
  return a;
}

bool invoice_order(const ChargeLine& a, const ChargeLine& b) {
  return std::tie(a.charge_date, a.event_seq, a.order_in_event, a.subscription_id) <
         std::tie(b.charge_date, b.event_seq, b.order_in_event, b.subscription_id);
}

}  // namespace subledger
