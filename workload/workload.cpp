#include "workload/workload.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace subledger {

namespace {

class Draw {
 public:
  explicit Draw(uint64_t seed) : rng_(seed) {}
  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }  // slight bias is harmless
  bool percent(int p) { return below(100) < static_cast<uint64_t>(p); }
  int between(int lo, int hi) { return lo + static_cast<int>(below(static_cast<uint64_t>(hi - lo + 1))); }

 private:
  std::mt19937_64 rng_;
};

struct PartnerPlan {
  std::string id, country, currency;
  int billing_day;
};

struct OfferPlan {
  const char* id;
  const char* name;
  const char* extra;  // further define_offer fields
  const char* usd;
  const char* eur;
  const char* gbp;
};

constexpr OfferPlan kOffers[] = {
    {"E3", "Office 365 E3", ",\"trial_eligible\":true", "20.00", "18.60", "16.40"},
    {"E1", "Office 365 E1", "", "8.00", "7.80", "6.60"},
    {"BP", "Microsoft 365 Business Premium", ",\"max_seats\":300", "22.00", "20.60", "18.10"},
    {"E5", "Microsoft 365 E5 trial", ",\"trial_eligible\":true", "57.00", "54.70", "47.10"},
    {"VOICE", "Business Voice add-on", ",\"addon_of\":[\"E3\",\"BP\"],\"max_seats\":300",
     "12.345", "11.50", "10.00"},
};
constexpr int kBaseOffers = 3;  // E3, E1, BP are bought directly

enum class ActionKind : uint8_t {
  kCreate, kTrial, kConvert, kSeats, kCancel, kReactivate, kPriceChange, kBilling,
};

struct Action {
  Date date;
  uint64_t order;  // creation order: keeps each subscription's own actions in sequence
  ActionKind kind;
  uint32_t sub;    // index into subs
  int32_t value;   // seats, or 0/1 frequency for a conversion
};

struct SubPlan {
  uint32_t customer;
  uint8_t offer;
  bool annual;
  int32_t seats;
  int32_t parent = -1;
};

std::string customer_id(uint32_t c) { return "C" + std::to_string(c + 1); }
std::string sub_id(uint32_t s) { return "S" + std::to_string(s + 1); }

class Planner {
 public:
  Planner(const WorkloadParams& p) : p_(p), draw_(p.seed), end_(p.start.plus_months(p.months)) {}

  void plan() {
    int partner_count =
        p_.partners > 0 ? p_.partners
                        : static_cast<int>(std::clamp<uint64_t>(p_.subscriptions / 20000, 3, 40));
    const char* countries[][2] = {{"US", "USD"}, {"DE", "EUR"}, {"GB", "GBP"}};
    for (int i = 0; i < partner_count; ++i) {
      const char* const* cc = countries[i % 3];
      partners_.push_back({"P" + std::to_string(i + 1), cc[0], cc[1], 20 - (i * 7) % 19});
    }
    while (subs_.size() < p_.subscriptions) plan_customer();
    // BILLING_RULES: a mid-year price change, effective the 1st of the middle month.
    actions_.push_back({p_.start.plus_months(p_.months / 2), next_order_++,
                        ActionKind::kPriceChange, 0, 0});
    for (int m = 1; m <= p_.months; ++m)
      actions_.push_back({p_.start.plus_months(m).plus_days(-1), UINT64_MAX - 12 * 200 + m,
                          ActionKind::kBilling, 0, 0});
    std::sort(actions_.begin(), actions_.end(), [](const Action& a, const Action& b) {
      return a.date != b.date ? a.date < b.date : a.order < b.order;
    });
  }

  WorkloadStats write(std::ostream& out) {
    WorkloadStats stats;
    stats.partners = partners_.size();
    stats.customers = customer_partner_.size();
    stats.subscriptions = subs_.size();
    std::string buf;
    auto emit = [&](const std::string& line) {
      buf += line;
      buf += '\n';
      ++stats.commands;
      if (buf.size() > (1 << 20)) {
        out << buf;
        buf.clear();
      }
    };
    write_catalog(emit);
    for (const auto& a : actions_) {
      if (a.kind == ActionKind::kBilling) ++stats.billing_runs;
      emit(render(a));
    }
    out << buf;
    return stats;
  }

 private:
  template <class Emit>
  void write_catalog(Emit& emit) {
    for (const auto& p : partners_)
      emit("{\"cmd\":\"register_partner\",\"request_id\":\"p-" + p.id + "\",\"partner_id\":\"" +
           p.id + "\",\"country\":\"" + p.country + "\",\"currency\":\"" + p.currency +
           "\",\"billing_day\":" + std::to_string(p.billing_day) + "}");
    for (const auto& o : kOffers) {
      emit(std::string("{\"cmd\":\"define_offer\",\"request_id\":\"o-") + o.id +
           "\",\"offer_id\":\"" + o.id + "\",\"name\":\"" + o.name + "\"" + o.extra + "}");
      const char* prices[][2] = {{"USD", o.usd}, {"EUR", o.eur}, {"GBP", o.gbp}};
      for (const auto& pr : prices)
        emit(std::string("{\"cmd\":\"publish_price\",\"request_id\":\"pr-") + o.id + "-" +
             pr[0] + "\",\"offer_id\":\"" + o.id + "\",\"currency\":\"" + pr[0] +
             "\",\"monthly_price\":\"" + pr[1] + "\",\"effective_from\":\"2020-01-01\"}");
    }
    for (uint32_t c = 0; c < customer_partner_.size(); ++c) {
      const PartnerPlan& p = partners_[customer_partner_[c]];
      // One customer in ten is abroad: a US customer of a European partner is billed in EUR.
      bool abroad = c % 10 == 9;
      emit("{\"cmd\":\"create_customer\",\"request_id\":\"c-" + customer_id(c) +
           "\",\"customer_id\":\"" + customer_id(c) + "\",\"partner_id\":\"" + p.id +
           "\",\"country\":\"" + (abroad ? "US" : p.country) + "\",\"currency\":\"" +
           (abroad ? "USD" : p.currency) + "\",\"company_name\":\"Customer " +
           std::to_string(c + 1) + "\"}");
    }
  }

  std::string head(const char* cmd, const Action& a) {
    return std::string("{\"cmd\":\"") + cmd + "\",\"request_id\":\"g" + std::to_string(a.order) +
           "\",\"subscription_id\":\"" + sub_id(a.sub) + "\"";
  }

  std::string render(const Action& a) {
    const std::string date = ",\"date\":\"" + a.date.iso() + "\"}";
    const SubPlan& s = subs_[a.sub];
    switch (a.kind) {
      case ActionKind::kCreate: {
        std::string line = head("create_subscription", a) + ",\"customer_id\":\"" +
                           customer_id(s.customer) + "\",\"offer_id\":\"" +
                           kOffers[s.offer].id + "\",\"seats\":" + std::to_string(a.value);
        if (s.parent >= 0)
          line += ",\"parent_subscription_id\":\"" + sub_id(static_cast<uint32_t>(s.parent)) + "\"";
        else
          line += std::string(",\"billing_frequency\":\"") + (s.annual ? "annual" : "monthly") + "\"";
        return line + date;
      }
      case ActionKind::kTrial:
        return head("start_trial", a) + ",\"customer_id\":\"" + customer_id(s.customer) +
               "\",\"offer_id\":\"" + kOffers[s.offer].id + "\"" + date;
      case ActionKind::kConvert:
        return head("convert_trial", a) + ",\"billing_frequency\":\"" +
               (s.annual ? "annual" : "monthly") + "\"" + date;
      case ActionKind::kSeats:
        return head("change_seats", a) + ",\"seats\":" + std::to_string(a.value) + date;
      case ActionKind::kCancel: return head("cancel", a) + date;
      case ActionKind::kReactivate: return head("reactivate", a) + date;
      case ActionKind::kPriceChange:
        return "{\"cmd\":\"publish_price\",\"request_id\":\"g" + std::to_string(a.order) +
               "\",\"offer_id\":\"E3\",\"currency\":\"USD\",\"monthly_price\":\"23.00\","
               "\"effective_from\":\"" + a.date.iso() + "\"}";
      case ActionKind::kBilling:
        return "{\"cmd\":\"run_billing\",\"request_id\":\"bill-" + a.date.iso() +
               "\",\"through\":\"" + a.date.iso() + "\"}";
    }
    return "";
  }

  void add(Date d, ActionKind kind, uint32_t sub, int32_t value = 0) {
    actions_.push_back({d, next_order_++, kind, sub, value});
  }

  Date random_start() {
    // Most subscriptions exist from the first month, so every run bills a realistic book.
    int span = end_ - p_.start;
    int offset = draw_.percent(60) ? draw_.between(0, 27) : draw_.between(0, std::max(0, span - 45));
    Date d = p_.start.plus_days(offset);
    if (draw_.percent(4)) {  // a month-end purchase: anchored on the 1st after
      Date eom = d.first_of_next_month().plus_days(-1);
      if (eom < end_.plus_days(-45)) d = eom;
    }
    return d;
  }

  void plan_customer() {
    uint32_t c = static_cast<uint32_t>(customer_partner_.size());
    customer_partner_.push_back(static_cast<uint32_t>(draw_.below(partners_.size())));
    int count = draw_.percent(70) ? draw_.between(1, 3) : draw_.between(4, 20);
    bool used_trial = false;
    for (int i = 0; i < count && subs_.size() < p_.subscriptions; ++i) {
      if (!used_trial && draw_.percent(8)) {
        used_trial = true;
        plan_trial(c);
      } else {
        plan_paid(c, static_cast<uint8_t>(draw_.below(kBaseOffers)));
      }
    }
  }

  void plan_trial(uint32_t c) {
    uint32_t s = static_cast<uint32_t>(subs_.size());
    subs_.push_back({c, 3, draw_.percent(20), 25});
    Date d = random_start();
    add(d, ActionKind::kTrial, s);
    if (draw_.percent(60)) add(d.plus_days(draw_.between(1, 29)), ActionKind::kConvert, s);
  }

  // A paid subscription's life: creation, maybe an add-on, a seat change, a cancellation inside
  // or after 30 days, and now and then a reactivation.
  void plan_paid(uint32_t c, uint8_t offer) {
    uint32_t s = static_cast<uint32_t>(subs_.size());
    int32_t seats = draw_.percent(80) ? draw_.between(1, 25) : draw_.between(26, 300);
    subs_.push_back({c, offer, draw_.percent(20), seats});
    Date d = random_start();
    add(d, ActionKind::kCreate, s, seats);
    Date last = d;
    bool with_addon = offer != 1 && draw_.percent(10) && subs_.size() < p_.subscriptions;
    if (with_addon) {
      uint32_t a = static_cast<uint32_t>(subs_.size());
      subs_.push_back({c, 4, subs_[s].annual, draw_.between(1, 20), static_cast<int32_t>(s)});
      last = d.plus_days(draw_.between(1, 5));
      add(last, ActionKind::kCreate, a, subs_[a].seats);
    }
    int room = end_.plus_days(-2) - last;
    if (room > 12 && draw_.percent(30)) {
      last = last.plus_days(draw_.between(10, std::min(room, 200)));
      int32_t now = subs_[s].seats;
      int32_t next = std::clamp(now + (draw_.percent(50) ? 1 : -1) * draw_.between(1, 10), 1, 300);
      if (next == now) next = now == 300 ? 299 : now + 1;
      subs_[s].seats = next;
      add(last, ActionKind::kSeats, s, next);
    }
    room = end_.plus_days(-2) - last;
    if (room > 2 && draw_.percent(10)) {
      bool early = draw_.percent(50) && last - d < 28;
      Date cancel = early ? last.plus_days(draw_.between(1, 30 - (last - d)))
                          : last.plus_days(draw_.between(1, std::min(room, 300)));
      if (cancel >= end_) return;
      add(cancel, ActionKind::kCancel, s);
      // A reactivation must fall inside the term the cancellation ended (BILLING_RULES 5).
      Date anchor = d.day() <= 28 ? d : d.first_of_next_month();
      Date term_end = anchor.plus_months(12);
      while (term_end <= cancel) term_end = term_end.plus_months(12);
      int left = std::min(end_.plus_days(-1), term_end.plus_days(-1)) - cancel;
      if (left > 1 && draw_.percent(20))
        add(cancel.plus_days(draw_.between(1, std::min(left, 90))), ActionKind::kReactivate, s);
    }
  }

  const WorkloadParams& p_;
  Draw draw_;
  Date end_;
  uint64_t next_order_ = 0;
  std::vector<PartnerPlan> partners_;
  std::vector<uint32_t> customer_partner_;
  std::vector<SubPlan> subs_;
  std::vector<Action> actions_;
};

}  // namespace

WorkloadStats write_workload(const WorkloadParams& params, std::ostream& out) {
  Planner planner(params);
  planner.plan();
  return planner.write(out);
}

}  // namespace subledger
