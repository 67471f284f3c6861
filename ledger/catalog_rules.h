// Catalog rules: what the November 2020 catalog adds to a purchase and to the start of a term
// (BILLING_RULES 12 and 13).
//
// Availability: a purchase (create_subscription, start_trial, convert_trial) of a retired offer,
// outside the offer's markets or outside its customer segment is rejected. Promotions: when a term
// starts, the eligible promotion with the highest percentage (ties: the lowest id in byte order) is
// chosen and locked into the term, so replay never decides it again.
// Pure functions of the state they are given; safe from any thread that may read that state.
#pragma once

#include <optional>
#include <string>

#include "events/event.h"
#include "ledger/command.h"
#include "projections/ledger_state.h"

namespace subledger {

// BILLING_RULES 13, checked in this order: OFFER_RETIRED, NOT_AVAILABLE_IN_MARKET,
// SEGMENT_NOT_ELIGIBLE. nullopt when the customer may buy the offer on `d`.
std::optional<Rejection> check_availability(const Catalog& catalog, const OfferDefined& offer,
                                            const Customer& customer, Date d);

enum class TermKind : uint8_t { kNew, kRenewal };

// A term about to start: subscription `subscription_id` of `customer_id`, offer `offer_id`, with
// `seats` seats on its date `t` (BILLING_RULES 12 "the term's date").
struct TermStart {
  std::string subscription_id, customer_id, offer_id;
  int64_t seats = 0;
  Date t;
  TermKind kind = TermKind::kNew;
};

// BILLING_RULES 12: whether `promotion` is eligible for the term, against the state as it stands
// when the term is decided (everything in it is earlier in the log than the term's event).
bool promotion_eligible(const PromotionDefined& promotion, const TermStart& term,
                        const LedgerState& state);

// BILLING_RULES 12 "one per term": the chosen promotion, or nullptr.
const Promotion* choose_promotion(const TermStart& term, const LedgerState& state);

// `term` with the chosen promotion locked into it.
Term with_promotion(Term term, const TermStart& start, const LedgerState& state);

}  // namespace subledger
