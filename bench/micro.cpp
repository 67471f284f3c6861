// Micro-benchmarks (Google Benchmark): the hot pieces of apply, replay and the billing run.
#include <benchmark/benchmark.h>
#include <stdexcept>

#include "events/codec.h"
#include "ledger/command.h"
#include "ledger/decide.h"
#include "ledger/stamp.h"
#include "projections/invoice.h"

namespace subledger {
namespace {

const char* kCreate =
    R"({"cmd":"create_subscription","request_id":"g123456","subscription_id":"S123456",)"
    R"("customer_id":"C1","offer_id":"E3","seats":10,"billing_frequency":"monthly","date":"2025-01-15"})";

Event sample_event() {
  Event e;
  e.seq = 123456;
  e.stream = {StreamKind::kSubscription, "S123456"};
  e.stream_version = 4;
  e.effective_date = *Date::parse("2025-03-10");
  e.recorded_at_micros = 1'700'000'000'000'000;
  e.actor = "cli";
  e.request_id = "g123456";
  e.payload = SubscriptionCreated{"S123456",
                                  "C1234",
                                  "E3",
                                  "",
                                  10,
                                  Frequency::kMonthly,
                                  make_term(*Date::parse("2025-03-10"), 20'000'000),
                                  "USD"};
  return e;
}

void BM_ParseCommand(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(parse_command(kCreate));
}
BENCHMARK(BM_ParseCommand);

void BM_PayloadHash(benchmark::State& state) {
  Command c = *parse_command(kCreate).command;
  for (auto _ : state) benchmark::DoNotOptimize(payload_hash(c));
}
BENCHMARK(BM_PayloadHash);

void BM_EncodeEvent(benchmark::State& state) {
  Event e = sample_event();
  for (auto _ : state) benchmark::DoNotOptimize(encode_event(e));
}
BENCHMARK(BM_EncodeEvent);

void BM_DecodeEvent(benchmark::State& state) {
  std::string bytes = encode_event(sample_event());
  EventDecoder decoder;
  Event out;
  for (auto _ : state) benchmark::DoNotOptimize(decoder.decode(bytes, out));
  state.counters["bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_DecodeEvent);

void BM_LineAmountProrated(benchmark::State& state) {
  int days = 1;
  for (auto _ : state) {
    benchmark::DoNotOptimize(rounded(prorated_days_amount(20'345'678, days, 17, 2)));
    days = days % 365 + 1;
  }
}
BENCHMARK(BM_LineAmountProrated);

class DecideFixture : public benchmark::Fixture {
 public:
  void SetUp(const benchmark::State&) override {
    if (ready_) return;
    apply(PartnerRegistered{"P1", "US", "USD", 20}, Date());
    apply(OfferDefined{"E3", "E3", Segment::kCommercial, true, {}, 0, 0}, Date());
    apply(PricePublished{"E3", "USD", 20'000'000, *Date::parse("2020-01-01")},
          *Date::parse("2020-01-01"));
    apply(CustomerCreated{"C1", "P1", "US", "USD", "", "", "", ""}, Date());
    apply(SubscriptionCreated{"S1", "C1", "E3", "", 10, Frequency::kMonthly,
                              make_term(*Date::parse("2025-01-15"), 20'000'000), "USD"},
          *Date::parse("2025-01-15"));
    apply(TrialStarted{"T1", "C1", "E3", kTrialSeats, *Date::parse("2025-03-02")},
          *Date::parse("2025-01-31"));
    ready_ = true;
  }
  void apply(const EventPayload& p, Date d) {
    absl::Status applied = state_.apply(stamp_event(state_, p, d, "bench", "r", 0).event);
    if (!applied.ok()) throw std::logic_error("the bench fixture: " + std::string(applied.message()));
  }
  LedgerState state_{false};
  bool ready_ = false;
};

// One decision per command type, each against the same small ledger (a partner, offer E3 with a
// trial, customer C1 with monthly S1 and trial T1).
const char* const kDecisions[] = {
    R"({"cmd":"register_partner","request_id":"x","partner_id":"P2","country":"DE","currency":"EUR","billing_day":5})",
    R"({"cmd":"create_customer","request_id":"x","customer_id":"C2","partner_id":"P1","country":"US","currency":"USD"})",
    R"({"cmd":"define_offer","request_id":"x","offer_id":"E5","name":"E5"})",
    R"({"cmd":"publish_price","request_id":"x","offer_id":"E3","currency":"USD","monthly_price":"21.00","effective_from":"2025-06-01"})",
    R"({"cmd":"create_subscription","request_id":"x","subscription_id":"S9","customer_id":"C1","offer_id":"E3","seats":5,"billing_frequency":"annual","date":"2025-03-01"})",
    R"({"cmd":"start_trial","request_id":"x","subscription_id":"T9","customer_id":"C1","offer_id":"E3","date":"2025-03-01"})",
    R"({"cmd":"convert_trial","request_id":"x","subscription_id":"T1","billing_frequency":"monthly","date":"2025-02-20"})",
    R"({"cmd":"change_seats","request_id":"x","subscription_id":"S1","seats":12,"date":"2025-03-01"})",
    R"({"cmd":"cancel","request_id":"x","subscription_id":"S1","date":"2025-03-01"})",
    R"({"cmd":"set_auto_renew","request_id":"x","subscription_id":"S1","enabled":false,"date":"2025-03-01"})",
    R"({"cmd":"renew","request_id":"x","subscription_id":"S1","date":"2025-03-01"})",
};

BENCHMARK_DEFINE_F(DecideFixture, Decide)(benchmark::State& st) {
  Command c = *parse_command(kDecisions[st.range(0)]).command;
  st.SetLabel(std::string(to_string(c.type)));
  for (auto _ : st) benchmark::DoNotOptimize(decide(c, state_));
}
BENCHMARK_REGISTER_F(DecideFixture, Decide)->DenseRange(0, std::size(kDecisions) - 1);

void BM_InvoiceHash(benchmark::State& state) {
  Invoice inv;
  inv.currency = "USD";
  for (int i = 0; i < state.range(0); ++i) {
    ChargeLine l;
    l.subscription_id = "S" + std::to_string(i);
    l.offer_id = "E3";
    l.type = ChargeType::kCycle;
    l.period_start = *Date::parse("2025-03-01");
    l.period_end = *Date::parse("2025-04-01");
    l.charge_date = l.period_start;
    l.seats = 10;
    l.unit_price_micros = 20'000'000;
    l.amount_minor = 20000;
    l.event_seq = 1000 + static_cast<uint64_t>(i);
    inv.lines.push_back(l);
  }
  for (auto _ : state) {
    Invoice copy = inv;
    seal_invoice(copy);
    benchmark::DoNotOptimize(copy.lines_sha256);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_InvoiceHash)->Arg(1)->Arg(10)->Arg(100);

}  // namespace
}  // namespace subledger

BENCHMARK_MAIN();
