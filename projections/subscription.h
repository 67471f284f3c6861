// Subscription: the state of one subscription, evolved from its events (the "evolve" half of the
// decider), and the charge lines that evolution produces (BILLING_RULES 2, 4, 5, 6).
//
// evolve() is a pure fold: the same events in the same order give the same state and the same
// lines, whatever the machine. Monthly cycle fees are not events: they are derived lazily by
// advance_to(), which every caller runs before evolving a later-dated event of the subscription
// and before invoicing, so a cycle fee always sees the state as at its period start ("what time
// brings on a date happens before the commands dated that day").
// Not thread-safe: one writer per Subscription.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "events/date.h"
#include "events/event.h"
#include "projections/charge_line.h"

namespace subledger {

enum class Status : uint8_t { kTrial, kActive, kCancelled, kExpired };
std::string_view to_string(Status status);

// BILLING_RULES 5: a trial's length and seats.
inline constexpr int kTrialDays = 30;
inline constexpr uint32_t kTrialSeats = 25;
// BILLING_RULES 6 and 14: a cancellation this many days or fewer after the term start is credited
// in full.
inline constexpr int kFullCreditDays = 30;

// BILLING_RULES 2: the anchor of a term starting on `start`.
Date anchor_for(Date start);
// A term of `term_months` months from `start` with its anchor and end, at the locked price and
// without a promotion.
Term make_term(Date start, int64_t price_micros, int term_months = kDefaultTermMonths);
// The length of a term in months (12 or 36, BILLING_RULES 14). REQUIRES: a paid term.
int term_months_of(const Term& term);

// A change of status as the subscription's events made it (BILLING_RULES 12: what an excluding
// subscription was at the end of a given day). One per status-changing event, in log order.
struct StatusMark {
  Date date;
  Status status = Status::kTrial;
  Date cancelled_on;
  friend bool operator==(const StatusMark&, const StatusMark&) = default;
};

using LineSink = std::function<void(ChargeLine&&)>;

// Whether time brings a transition on or before `d`: a trial that ends, or an active term that
// ends (ledger/decide.cpp, due_transitions; the billing run's SubscriptionDue asks it of rows).
inline bool transition_due_by(Status status, Date trial_end, Date term_end, Date d) {
  return (status == Status::kTrial && trial_end <= d) ||
         (status == Status::kActive && term_end <= d);
}

struct Subscription {
  std::string id, customer_id, offer_id, parent_id, currency;
  Status status = Status::kTrial;
  Frequency frequency = Frequency::kMonthly;
  uint32_t seats = 0;
  Term term;          // the current paid term; none before a trial converts
  bool paid = false;  // has had a paid term
  bool auto_renew = true;
  bool cancelled_in_trial = false;
  Date created_on, trial_end, cancelled_on, expired_on, last_event_date;
  uint64_t version = 0;         // stream version of the last evolved event
  uint64_t term_event_seq = 0;  // the event that began the term: cycle fees point to it
  Date next_cycle;              // start of the next monthly period to charge, none if annual
  // BILLING_RULES 6: the net of the current term's lines and the span they cover.
  int64_t term_net_minor = 0;
  Date term_lines_start, term_lines_end;
  int8_t currency_digits = 2;
  uint64_t ordinal = 0;                    // creation order among all subscriptions of the ledger
  std::vector<StatusMark> status_marks{};  // every status change, in log order

  // The months of one billing period (1 monthly, 12 annual: BILLING_RULES 2 and 14).
  int period_months() const;
  // Whether periods after the first are charged as CYCLE_FEEs: monthly billing, or annual billing
  // of a term longer than a year (BILLING_RULES 14).
  bool has_cycles() const;
  bool is_addon() const { return !parent_id.empty(); }
  bool transition_due_by(Date d) const {
    return subledger::transition_due_by(status, trial_end, term.end, d);
  }
  // "Current period end" (BILLING_RULES 4): the end of the paid period containing `d`.
  // REQUIRES: a paid term, term.start <= d < term.end.
  Date current_period_end(Date d) const;
  // The status this subscription has at the end of `d` once what time brings up to `d` is
  // counted (trial expiry, renewal or expiry at the term end), without changing anything.
  Status status_as_of(Date d) const;
  // BILLING_RULES 12: the status at the end of `d` counting only this subscription's events dated
  // on or before `d` and what time brought it up to then, with the date of its latest
  // cancellation; nullopt when its first event is dated after `d`.
  std::optional<StatusMark> standing_at_end_of(Date d) const;
};

// Emits the cycle fees of every monthly period that starts on or before `d` (BILLING_RULES 4).
void advance_to(Subscription& sub, Date d, const LineSink& sink);

// Applies one event of this subscription's stream. The first event creates it.
// REQUIRES: advance_to(sub, event.effective_date) has run; the event belongs to sub's stream.
void evolve(Subscription& sub, const Event& event, const LineSink& sink);

}  // namespace subledger
