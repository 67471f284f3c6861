#include "ledger/catalog_rules.h"

#include <algorithm>

namespace subledger {

namespace {

bool contains(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// "markets is empty or contains the customer's country" (BILLING_RULES 12 and 13).
bool sold_in(const std::vector<std::string>& markets, const std::string& country) {
  return markets.empty() || contains(markets, country);
}

std::string listed(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : ", ") + v;
  return out;
}

// new_customer_only: no other subscription of the customer has ever started a paid term (trials
// do not count; a term credited in full still does).
bool is_new_customer(const TermStart& term, const Customer& customer, const LedgerState& state) {
  for (const auto& id : customer.subscription_ids) {
    if (id == term.subscription_id) continue;
    if (state.subscription(id)->paid) return false;
  }
  return true;
}

// exclude_offers: every other subscription of an excluded offer, as it stood at the end of the
// day before t, is not active and not cancelled within exclude_cancel_days of t.
bool excluded(const PromotionDefined& p, const TermStart& term, const Customer& customer,
              const LedgerState& state) {
  const Date day_before = term.t.plus_days(-1);
  for (const auto& id : customer.subscription_ids) {
    if (id == term.subscription_id) continue;
    const Subscription* x = state.subscription(id);
    if (!contains(p.exclude_offers, x->offer_id)) continue;
    std::optional<StatusMark> standing = x->standing_at_end_of(day_before);
    if (!standing) continue;  // its first event is dated t or later
    if (standing->status == Status::kActive) return true;
    if (standing->status == Status::kCancelled &&
        term.t - standing->cancelled_on <= p.exclude_cancel_days)
      return true;
  }
  return false;
}

}  // namespace

std::optional<Rejection> check_availability(const Catalog& catalog, const OfferDefined& offer,
                                            const Customer& customer, Date d) {
  const Date retired = catalog.retired_on(offer.offer_id);
  if (!retired.is_none() && retired <= d)
    return rejection(RejectionCode::kOfferRetired, "offer '" + offer.offer_id +
                                                       "' was retired on " + retired.iso() +
                                                       " and cannot be bought from then on");
  if (!sold_in(offer.markets, customer.def.country))
    return rejection(RejectionCode::kNotAvailableInMarket,
                     "offer '" + offer.offer_id + "' is sold only to customers in " +
                         listed(offer.markets) + "; customer '" + customer.def.customer_id +
                         "' is in " + customer.def.country);
  if (offer.segment != Segment::kCommercial && offer.segment != customer.def.segment)
    return rejection(RejectionCode::kSegmentNotEligible,
                     "offer '" + offer.offer_id + "' is for " +
                         std::string(to_string(offer.segment)) + " customers; customer '" +
                         customer.def.customer_id + "' is " +
                         std::string(to_string(customer.def.segment)) +
                         " (update_customer sets the segment once validated)");
  return std::nullopt;
}

bool promotion_eligible(const PromotionDefined& p, const TermStart& term,
                        const LedgerState& state) {
  if (!contains(p.offer_ids, term.offer_id)) return false;
  if (!(term.kind == TermKind::kNew ? p.applies_to_new : p.applies_to_renewal)) return false;
  if (term.t < p.purchase_from || p.purchase_to < term.t) return false;
  const Customer* customer = state.catalog().customer(term.customer_id);
  if (!sold_in(p.markets, customer->def.country)) return false;
  if (p.max_seats != 0 && term.seats > static_cast<int64_t>(p.max_seats)) return false;
  if (p.new_customer_only && !is_new_customer(term, *customer, state)) return false;
  return !excluded(p, term, *customer, state);
}

const Promotion* choose_promotion(const TermStart& term, const LedgerState& state) {
  const Promotion* best = nullptr;
  // In id order, so among equal percentages the first kept is the lowest id.
  for (const auto& [id, promotion] : state.catalog().promotions()) {
    if (best && promotion.def.percent_off <= best->def.percent_off) continue;
    if (promotion_eligible(promotion.def, term, state)) best = &promotion;
  }
  return best;
}

Term with_promotion(Term term, const TermStart& start, const LedgerState& state) {
  if (const Promotion* p = choose_promotion(start, state)) {
    term.promotion_id = p->def.promotion_id;
    term.percent_off = p->def.percent_off;
  }
  return term;
}

}  // namespace subledger
