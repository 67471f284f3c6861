#include "projections/subscription.h"

#include <cassert>
#include <variant>

#include "events/money.h"

namespace subledger {

std::string_view to_string(Status status) {
  switch (status) {
    case Status::kTrial:
      return "trial";
    case Status::kActive:
      return "active";
    case Status::kCancelled:
      return "cancelled";
    case Status::kExpired:
      return "expired";
  }
  return "?";
}

Date anchor_for(Date start) {
  // BILLING_RULES 2 (Decision): every term start on a 29th..31st is anchored on the 1st after.
  return start.day() <= kLastSafeDay ? start : start.first_of_next_month();
}

Term make_term(Date start, int64_t price_micros, int term_months) {
  Date anchor = anchor_for(start);
  return Term{start, anchor, anchor.plus_months(term_months), price_micros, "", 0};
}

int term_months_of(const Term& term) { return whole_months_between(term.anchor, term.end); }

int Subscription::period_months() const {
  return frequency == Frequency::kAnnual ? kMonthsPerYear : 1;
}

bool Subscription::has_cycles() const {
  return frequency == Frequency::kMonthly || term_months_of(term) > kMonthsPerYear;
}

Date Subscription::current_period_end(Date d) const {
  const int months = period_months();
  // The stub belongs to period 0.
  int k = d < term.anchor ? 0 : whole_months_between(term.anchor, d) / months;
  Date end = term.anchor.plus_months((k + 1) * months);
  return end < term.end ? end : term.end;
}

std::optional<StatusMark> Subscription::standing_at_end_of(Date d) const {
  if (created_on > d) return std::nullopt;
  // A row written before status marks existed has none: its state now is what is known.
  if (last_event_date <= d ||
      status_marks.empty())  // every event counts: the state now, with what time brings to d
    return StatusMark{d, status_as_of(d), cancelled_on};
  // Later events exist, so what time brought up to d was materialized before them: the last
  // change on or before d is the standing.
  if (status_marks.front().date > d) return std::nullopt;
  const StatusMark* last = &status_marks.front();
  for (const auto& m : status_marks)
    if (m.date <= d) last = &m;
  return *last;
}

Status Subscription::status_as_of(Date d) const {
  if (status == Status::kTrial && d >= trial_end) return Status::kExpired;
  if (status == Status::kActive && d >= term.end)
    return auto_renew ? Status::kActive : Status::kExpired;
  return status;
}

namespace {

// Builds lines for one subscription, numbering them within the causing event and keeping the
// term's running net (BILLING_RULES 6).
class LineWriter {
 public:
  LineWriter(Subscription& sub, uint64_t event_seq, Date charge_date, const LineSink& sink)
      : sub_(sub), seq_(event_seq), charge_date_(charge_date), sink_(sink) {}

  void whole_months(ChargeType type, Date start, Date end, int months) {
    emit(type, start, end, sub_.seats, FormulaKind::kWholeMonths, months, false);
  }
  void prorated(ChargeType type, Date start, Date end, uint32_t seats, bool credit) {
    emit(type, start, end, seats, FormulaKind::kDays, end - start, credit);
  }
  // BILLING_RULES 6, within 30 days: one line negating the term's net so far.
  void reversal(ChargeType type) {
    ChargeLine line = base(type, sub_.term_lines_start, sub_.term_lines_end, sub_.seats);
    line.formula = FormulaKind::kReversal;
    line.reversed_net_minor = sub_.term_net_minor;
    line.amount_minor = -sub_.term_net_minor;
    line.negated = true;
    push(std::move(line));
  }
  // A purchase, conversion or renewal: the stub (if any) and the first period, both charged now.
  void term_opening(ChargeType type) {
    const Term& t = sub_.term;
    if (t.anchor > t.start) prorated(type, t.start, t.anchor, sub_.seats, false);
    const int months = sub_.period_months();
    whole_months(type, t.anchor, t.anchor.plus_months(months), months);
  }

 private:
  ChargeLine base(ChargeType type, Date start, Date end, uint32_t seats) {
    ChargeLine line;
    line.subscription_id = sub_.id;
    line.offer_id = sub_.offer_id;
    line.type = type;
    line.period_start = start;
    line.period_end = end;
    line.charge_date = charge_date_;
    line.seats = seats;
    line.unit_price_micros = sub_.term.price_micros;
    line.frequency = sub_.frequency;
    line.event_seq = seq_;
    line.order_in_event = order_++;
    line.currency_digits = sub_.currency_digits;
    line.promotion_id = sub_.term.promotion_id;  // BILLING_RULES 12: every line of the term
    line.percent_off = static_cast<uint8_t>(sub_.term.percent_off);
    return line;
  }
  void emit(ChargeType type, Date start, Date end, uint32_t seats, FormulaKind formula,
            int quantity, bool credit) {
    ChargeLine line = base(type, start, end, seats);
    line.formula = formula;
    line.quantity = quantity;
    line.negated = credit;
    line.amount_minor = rounded(exact_amount(line));
    push(std::move(line));
  }
  void push(ChargeLine&& line) {
    if (sub_.term_lines_start.is_none() || line.period_start < sub_.term_lines_start)
      sub_.term_lines_start = line.period_start;
    if (sub_.term_lines_end.is_none() || line.period_end > sub_.term_lines_end)
      sub_.term_lines_end = line.period_end;
    sub_.term_net_minor += line.amount_minor;
    sink_(std::move(line));
  }

  Subscription& sub_;
  uint64_t seq_;
  Date charge_date_;
  const LineSink& sink_;
  uint32_t order_ = 0;
};

void begin_term(Subscription& sub, const Term& term, uint64_t seq) {
  sub.term = term;
  sub.paid = true;
  sub.status = Status::kActive;
  sub.term_event_seq = seq;
  sub.term_net_minor = 0;
  sub.term_lines_start = Date();
  sub.term_lines_end = Date();
  sub.next_cycle = sub.has_cycles() ? term.anchor.plus_months(sub.period_months()) : Date();
}

void mark_status(Subscription& sub, Date d) {
  sub.status_marks.push_back(StatusMark{d, sub.status, sub.cancelled_on});
}

struct Evolver {
  Subscription& sub;
  const Event& event;
  const LineSink& sink;
  Date date() const { return event.effective_date; }
  LineWriter writer() { return LineWriter(sub, event.seq, date(), sink); }

  void operator()(const SubscriptionCreated& e) {
    sub.id = e.subscription_id;
    sub.customer_id = e.customer_id;
    sub.offer_id = e.offer_id;
    sub.parent_id = e.parent_subscription_id;
    sub.currency = e.currency;
    sub.currency_digits = static_cast<int8_t>(minor_digits(e.currency));
    sub.seats = e.seats;
    sub.frequency = e.frequency;
    sub.created_on = date();
    begin_term(sub, e.term, event.seq);
    mark_status(sub, date());
    writer().term_opening(ChargeType::kPurchase);
  }
  void operator()(const TrialStarted& e) {
    sub.id = e.subscription_id;
    sub.customer_id = e.customer_id;
    sub.offer_id = e.offer_id;
    sub.status = Status::kTrial;
    sub.seats = e.seats;
    sub.trial_end = e.trial_end;
    sub.created_on = date();
    mark_status(sub, date());
  }
  void operator()(const TrialConverted& e) {
    sub.frequency = e.frequency;
    sub.currency = e.currency;
    sub.currency_digits = static_cast<int8_t>(minor_digits(e.currency));
    begin_term(sub, e.term, event.seq);
    mark_status(sub, date());
    writer().term_opening(ChargeType::kPurchase);
  }
  void operator()(const TrialExpired&) {
    sub.status = Status::kExpired;
    sub.expired_on = date();
    mark_status(sub, date());
  }
  void operator()(const SeatsChanged& e) {
    // BILLING_RULES 4: credit the old seats and rebill the new ones to the current period end.
    Date end = sub.current_period_end(date());
    LineWriter w = writer();
    w.prorated(ChargeType::kSeatChange, date(), end, e.old_seats, true);
    w.prorated(ChargeType::kSeatChange, date(), end, e.new_seats, false);
    sub.seats = e.new_seats;
  }
  void operator()(const SubscriptionCancelled&) {
    if (sub.status == Status::kTrial) {
      sub.cancelled_in_trial = true;  // a cancelled trial has nothing to credit
    } else if (date() - sub.term.start <= kFullCreditDays) {
      // BILLING_RULES 6: within 30 days, 100% of the term so far.
      if (!sub.term_lines_start.is_none()) writer().reversal(ChargeType::kCancel);
    } else {
      writer().prorated(ChargeType::kCancel, date(), sub.current_period_end(date()), sub.seats,
                        true);
    }
    sub.status = Status::kCancelled;
    sub.cancelled_on = date();
    mark_status(sub, date());
  }
  void operator()(const SubscriptionReactivated&) {
    Date end = sub.current_period_end(date());
    sub.status = Status::kActive;
    sub.cancelled_on = Date();
    mark_status(sub, date());
    writer().prorated(ChargeType::kActivation, date(), end, sub.seats, false);
    // BILLING_RULES 14: the periods after the current one are charged as usual.
    if (sub.has_cycles()) sub.next_cycle = end;
  }
  void operator()(const AutoRenewSet& e) { sub.auto_renew = e.enabled; }
  void operator()(const SubscriptionRenewed& e) {
    begin_term(sub, e.term, event.seq);
    sub.expired_on = Date();
    mark_status(sub, date());
    writer().term_opening(ChargeType::kRenew);
  }
  void operator()(const SubscriptionExpired&) {
    sub.status = Status::kExpired;
    sub.expired_on = date();
    mark_status(sub, date());
  }
  template <class Other>
  void operator()(const Other&) {
    assert(false && "not a subscription event");
  }
};

}  // namespace

void advance_to(Subscription& sub, Date d, const LineSink& sink) {
  if (sub.status != Status::kActive || sub.next_cycle.is_none()) return;
  const int months = sub.period_months();
  while (sub.next_cycle <= d && sub.next_cycle < sub.term.end) {
    Date start = sub.next_cycle;
    LineWriter(sub, sub.term_event_seq, start, sink)
        .whole_months(ChargeType::kCycle, start, start.plus_months(months), months);
    sub.next_cycle = start.plus_months(months);
  }
}

void evolve(Subscription& sub, const Event& event, const LineSink& sink) {
  std::visit(Evolver{sub, event, sink}, event.payload);
  sub.version = event.stream_version;
  sub.last_event_date = event.effective_date;
}

}  // namespace subledger
