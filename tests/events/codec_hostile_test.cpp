// Hostile stored values: the decoders (events/codec.h, projections/row_codec.h) are the boundary
// where bytes from disk, a backup or `replay --from-hex` become values that the rest of the ledger
// trusts. Each field a later step REQUIRES to be valid (calendar arithmetic on a date, a switch
// on an enum, a day of month, a power of ten, a digest length) must come back as an error there,
// never as an assert, an abort or undefined behaviour (issue 9, class 5; the sanitizer build runs
// these with assertions on).
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <capnp/serialize-packed.h>
#include <gtest/gtest.h>
#include <kj/io.h>

#include <functional>
#include <string>
#include <vector>

#include "events/codec.h"
#include "events/events.capnp.h"
#include "events/hash.h"
#include "projections/row_codec.h"
#include "projections/rows.capnp.h"

namespace subledger {
namespace {

Date day(const char* iso) { return *Date::parse(iso); }

Event envelope(EventPayload payload) {
  Event e;
  e.seq = 7;
  e.stream = stream_of(payload);
  e.stream_version = 1;
  e.effective_date = day("2017-01-15");
  e.actor = "cli";
  e.request_id = "r7";
  e.payload = std::move(payload);
  e.prev_hash = std::string(32, '\x01');
  return e;
}

Term term() { return Term{day("2017-01-30"), day("2017-02-01"), day("2018-02-01"), 20'000'000}; }

// One event of every payload that holds a date, and of every payload that holds an enum.
std::vector<Event> dated_events() {
  return {envelope(PricePublished{"E3", "USD", 20'000'000, day("2016-01-01")}),
          envelope(SubscriptionCreated{"S1", "C1", "E3", "", 10, Frequency::kAnnual, term(), "USD"}),
          envelope(TrialStarted{"T1", "C1", "E3", 25, day("2017-02-14")}),
          envelope(TrialConverted{"T1", Frequency::kMonthly, term(), "USD"}),
          envelope(SubscriptionRenewed{"S1", false, term()}),
          envelope(BillingRun{day("2017-01-31"), day("2016-12-31"), 1}),
          envelope(InvoiceIssued{"C1-20170120", "C1", "P1", day("2017-01-20"), "USD", 100, 1,
                                 std::string(32, '\x7f'), std::string(32, '\x01')})};
}

using Mutation = std::function<void(schema::Event::Builder)>;

// The stored value of `e` with `mutate` applied to its message, re-hashed so that the decoder
// gets past the hash check (as `replay --from-hex` or a forger would).
std::string mutated(const Event& e, const Mutation& mutate) {
  std::string stored = encode_event(e);
  std::string body = stored.substr(0, stored.size() - kEventHashBytes);
  std::vector<capnp::word> words(body.size() / sizeof(capnp::word));
  std::memcpy(words.data(), body.data(), body.size());
  capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()));
  capnp::MallocMessageBuilder message;
  message.setRoot(reader.getRoot<schema::Event>());
  mutate(message.getRoot<schema::Event>());
  auto flat = capnp::messageToFlatArray(message);
  std::string out(reinterpret_cast<const char*>(flat.asBytes().begin()), flat.asBytes().size());
  return out + sha256(out);
}

std::string decode_error(const std::string& stored) {
  EventDecoder decoder;
  Event out;
  return std::string(decoder.decode(stored, out).message());
}

// Every date field of every payload, as a setter on the message.
std::vector<std::pair<std::string, std::function<void(schema::Event::Builder, uint32_t)>>>
date_fields() {
  using B = schema::Event::Builder;
  auto term_of = [](B b) {
    auto p = b.getPayload();
    if (p.isSubscriptionCreated()) return p.getSubscriptionCreated().getTerm();
    if (p.isTrialConverted()) return p.getTrialConverted().getTerm();
    return p.getSubscriptionRenewed().getTerm();
  };
  return {
      {"effective", [](B b, uint32_t v) { b.setEffectiveDate(v); }},
      {"effective_from",
       [](B b, uint32_t v) { b.getPayload().getPricePublished().setEffectiveFrom(v); }},
      {"term start", [=](B b, uint32_t v) { term_of(b).setStart(v); }},
      {"term anchor", [=](B b, uint32_t v) { term_of(b).setAnchor(v); }},
      {"term end", [=](B b, uint32_t v) { term_of(b).setEnd(v); }},
      {"trial end", [](B b, uint32_t v) { b.getPayload().getTrialStarted().setTrialEnd(v); }},
      {"through", [](B b, uint32_t v) { b.getPayload().getBillingRun().setThrough(v); }},
      {"previous clock",
       [](B b, uint32_t v) { b.getPayload().getBillingRun().setPreviousClock(v); }},
      {"invoice", [](B b, uint32_t v) { b.getPayload().getInvoiceIssued().setInvoiceDate(v); }},
  };
}

bool has_field(const Event& e, const std::string& field) {
  const EventPayload& p = e.payload;
  if (field == "effective") return true;
  if (field == "effective_from") return std::holds_alternative<PricePublished>(p);
  if (field.rfind("term ", 0) == 0)
    return std::holds_alternative<SubscriptionCreated>(p) ||
           std::holds_alternative<TrialConverted>(p) ||
           std::holds_alternative<SubscriptionRenewed>(p);
  if (field == "trial end") return std::holds_alternative<TrialStarted>(p);
  if (field == "through" || field == "previous clock") return std::holds_alternative<BillingRun>(p);
  return std::holds_alternative<InvoiceIssued>(p);
}

TEST(HostileEventDecoding, EveryDateFieldRejectsWhatIsNotARealDay) {
  const uint32_t not_days[] = {20170230,  // 30 February
                               20171301,  // month 13
                               20170100,  // day 0
                               20170001,  // month 0
                               20190229,  // 29 February of a common year
                               99999999, 4294967295u,
                               17991231,     // before the stored range
                               101000101};  // after it
  int checked = 0;
  for (const Event& e : dated_events())
    for (const auto& [field, set] : date_fields()) {
      if (!has_field(e, field)) continue;
      for (uint32_t bad : not_days) {
        std::string error =
            decode_error(mutated(e, [&set = set, bad](auto b) { set(b, bad); }));
        EXPECT_NE(error.find("invalid " + field + " date " + std::to_string(bad)),
                  std::string::npos)
            << event_type_name(e.payload) << " " << field << "=" << bad << ": " << error;
        ++checked;
      }
    }
  // 21 date fields over the 7 events (each has the effective date), 9 bad values each.
  EXPECT_EQ(checked, 21 * 9);
}

TEST(HostileEventDecoding, ADateAnEventCannotLackIsRequired) {
  for (const Event& e : dated_events())
    for (const auto& [field, set] : date_fields()) {
      if (!has_field(e, field) || field == "effective" || field == "previous clock") continue;
      std::string error = decode_error(mutated(e, [&set = set](auto b) { set(b, 0); }));
      EXPECT_NE(error.find("missing " + field + " date"), std::string::npos)
          << event_type_name(e.payload) << " " << field << ": " << error;
    }
}

TEST(HostileEventDecoding, HonestDatesAtTheEdgesOfTheRangeDecode) {
  // A term bought in the last month of year 9999 ends in 10000: the ledger wrote it, so it reads.
  Term late{day("9999-12-15"), day("9999-12-15"), Date::from_ymd(10000, 12, 15), 1};
  Event e = envelope(SubscriptionCreated{"S1", "C1", "E3", "", 1, Frequency::kAnnual, late, "USD"});
  EXPECT_EQ(decode_error(encode_event(e)), "");
  // The billing clock's day before the earliest input date.
  Event run = envelope(BillingRun{day("1900-01-31"), Date::from_ymd(1899, 12, 31), 0});
  EXPECT_EQ(decode_error(encode_event(run)), "");
}

TEST(HostileEventDecoding, TermsBreakingMakeTermsInvariantsAreRejected) {
  Event e = envelope(SubscriptionRenewed{"S1", false, term()});
  auto set_term = [&](uint32_t start, uint32_t anchor, uint32_t end) {
    return decode_error(mutated(e, [&](schema::Event::Builder b) {
      auto t = b.getPayload().getSubscriptionRenewed().getTerm();
      t.setStart(start);
      t.setAnchor(anchor);
      t.setEnd(end);
    }));
  };
  EXPECT_NE(set_term(20170130, 20170129, 20180129).find("out of order"), std::string::npos);
  EXPECT_NE(set_term(20170130, 20170201, 20170201).find("out of order"), std::string::npos);
  EXPECT_NE(set_term(20170130, 20170130, 20180130).find("after the 28th"), std::string::npos);
  EXPECT_EQ(set_term(20170128, 20170128, 20180128), "");
}

TEST(HostileEventDecoding, UnknownEnumValuesAreRejected) {
  Event offer = envelope(OfferDefined{"E3", "E3", Segment::kCommercial, false, {}, 0, 0});
  Event sub = envelope(SubscriptionCreated{"S1", "C1", "E3", "", 1, Frequency::kAnnual, term(), "USD"});
  EXPECT_NE(decode_error(mutated(offer, [](auto b) {
              b.getPayload().getOfferDefined().setSegment(static_cast<schema::Segment>(4));
            })).find("unknown segment 4"),
            std::string::npos);
  EXPECT_NE(decode_error(mutated(sub, [](auto b) {
              b.getPayload().getSubscriptionCreated().setFrequency(
                  static_cast<schema::Frequency>(2));
            })).find("unknown billing frequency 2"),
            std::string::npos);
  EXPECT_NE(decode_error(mutated(sub, [](auto b) {
              b.setStreamKind(static_cast<schema::StreamKind>(65535));
            })).find("unknown stream kind 65535"),
            std::string::npos);
}

TEST(HostileEventDecoding, ABillingDayOutside1To28IsRejected) {
  Event e = envelope(PartnerRegistered{"P1", "US", "USD", 20});
  for (uint8_t bad : {0, 29, 31, 255})
    EXPECT_NE(decode_error(mutated(e, [&](auto b) {
                b.getPayload().getPartnerRegistered().setBillingDay(bad);
              })).find("billing day " + std::to_string(bad)),
              std::string::npos);
}

TEST(HostileEventDecoding, DigestsOfTheWrongLengthAreRejected) {
  Event inv = dated_events().back();
  std::string five(5, 'x');
  auto bytes = [&] {
    return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(five.data()), five.size());
  };
  EXPECT_NE(decode_error(mutated(inv, [&](auto b) {
              b.getPayload().getInvoiceIssued().setLinesSha256(bytes());
            })).find("lines_sha256 has 5 bytes"),
            std::string::npos);
  EXPECT_NE(decode_error(mutated(inv, [&](auto b) {
              b.getPayload().getInvoiceIssued().setChainHead(bytes());
            })).find("chain_head has 5 bytes"),
            std::string::npos);
  EXPECT_NE(decode_error(mutated(inv, [&](auto b) { b.setPrevHash(bytes()); }))
                .find("prev_hash has 5 bytes"),
            std::string::npos);
}

TEST(HostileDate, StoredFormsAcceptRealDaysInRangeOnly) {
  EXPECT_EQ(Date::from_stored_yyyymmdd(0), Date());
  EXPECT_EQ(Date::from_stored_yyyymmdd(20240229), day("2024-02-29"));
  EXPECT_EQ(Date::from_stored_yyyymmdd(18000101), Date::from_ymd(1800, 1, 1));
  EXPECT_EQ(Date::from_stored_yyyymmdd(100991231), Date::from_ymd(10099, 12, 31));
  for (uint32_t bad : {20230229u, 20241232u, 17991231u, 101000101u, 4294967295u, 1u})
    EXPECT_FALSE(Date::from_stored_yyyymmdd(bad)) << bad;

  EXPECT_EQ(Date::from_stored_days(Date().days()), Date());
  EXPECT_EQ(Date::from_stored_days(0), day("1970-01-01"));
  int32_t first = Date::from_ymd(1800, 1, 1).days(), last = Date::from_ymd(10099, 12, 31).days();
  EXPECT_TRUE(Date::from_stored_days(first));
  EXPECT_TRUE(Date::from_stored_days(last));
  for (int32_t bad : {first - 1, last + 1, INT32_MAX, INT32_MIN + 1})
    EXPECT_FALSE(Date::from_stored_days(bad)) << bad;
}

// ---- projection rows ----

template <typename Root>
std::string packed(const std::function<void(typename Root::Builder)>& fill) {
  capnp::MallocMessageBuilder message;
  fill(message.initRoot<Root>());
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, message);
  auto bytes = out.getArray();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

constexpr int32_t kNoneDays = INT32_MIN;

void honest_line(rows::ChargeLine::Builder l) {
  l.setSubscriptionId("S1");
  l.setPeriodStart(17000);
  l.setPeriodEnd(17365);
  l.setChargeDate(17000);
  l.setCurrencyDigits(2);
}

std::string subscription_row(const std::function<void(rows::Subscription::Builder)>& mutate) {
  return packed<rows::Subscription>([&](rows::Subscription::Builder b) {
    b.setId("S1");
    for (auto set : {&rows::Subscription::Builder::setCreatedOn,
                     &rows::Subscription::Builder::setTrialEnd,
                     &rows::Subscription::Builder::setCancelledOn,
                     &rows::Subscription::Builder::setExpiredOn,
                     &rows::Subscription::Builder::setLastEventDate,
                     &rows::Subscription::Builder::setNextCycle,
                     &rows::Subscription::Builder::setTermLinesStart,
                     &rows::Subscription::Builder::setTermLinesEnd})
      (b.*set)(kNoneDays);
    auto t = b.initTerm();
    t.setStart(kNoneDays);
    t.setAnchor(kNoneDays);
    t.setEnd(kNoneDays);
    b.setCurrencyDigits(2);
    mutate(b);
  });
}

std::string invoice_row(const std::function<void(rows::Invoice::Builder)>& mutate) {
  return packed<rows::Invoice>([&](rows::Invoice::Builder b) {
    b.setInvoiceId("C1-20170120");
    b.setInvoiceDate(17186);
    b.setCurrencyDigits(2);
    std::string digest(32, 'h');
    b.setLinesSha256(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(digest.data()), 32));
    honest_line(b.initLines(1)[0]);
    mutate(b);
  });
}

std::string customer_row(const std::function<void(rows::Customer::Builder)>& mutate) {
  return packed<rows::Customer>([&](rows::Customer::Builder b) {
    b.setCustomerId("C1");
    b.setPendingCount(1);
    b.setNextLine(1);
    mutate(b);
  });
}

std::string line_row(const std::function<void(rows::ChargeLine::Builder)>& mutate) {
  return packed<rows::ChargeLine>([&](rows::ChargeLine::Builder b) {
    honest_line(b);
    mutate(b);
  });
}

const int32_t kBadDays[] = {INT32_MAX, INT32_MIN + 1, -62'000'000 /* year -167,000 */,
                            3'000'000 /* year 10,183 */};

TEST(HostileRowDecoding, HonestRowsDecode) {
  EXPECT_TRUE(decode_subscription(subscription_row([](auto) {})));
  EXPECT_TRUE(decode_issued_invoice(invoice_row([](auto) {})));
  EXPECT_TRUE(decode_customer(customer_row([](auto) {})));
  EXPECT_TRUE(decode_charge_line(line_row([](auto) {})));
}

TEST(HostileRowDecoding, ACustomerRowWithItsListsInsideOrMorePendingThanNumbersIsRejected) {
  // Since projection format 5 the subscriptions and pending lines are rows of their own.
  EXPECT_FALSE(decode_customer(customer_row([](auto b) { b.initSubscriptions(1).set(0, "S1"); })));
  EXPECT_FALSE(decode_customer(customer_row([](auto b) { honest_line(b.initPending(1)[0]); })));
  EXPECT_FALSE(decode_customer(customer_row([](auto b) { b.setPendingCount(2); })));
}

TEST(HostileRowDecoding, EverySubscriptionDateRejectsDaysOutsideTheCalendarRange) {
  using B = rows::Subscription::Builder;
  std::vector<std::function<void(B, int32_t)>> setters = {
      [](B b, int32_t v) { b.setCreatedOn(v); },     [](B b, int32_t v) { b.setTrialEnd(v); },
      [](B b, int32_t v) { b.setCancelledOn(v); },   [](B b, int32_t v) { b.setExpiredOn(v); },
      [](B b, int32_t v) { b.setLastEventDate(v); }, [](B b, int32_t v) { b.setNextCycle(v); },
      [](B b, int32_t v) { b.setTermLinesStart(v); },
      [](B b, int32_t v) { b.setTermLinesEnd(v); },
      [](B b, int32_t v) { b.getTerm().setStart(v); },
      [](B b, int32_t v) { b.getTerm().setAnchor(v); },
      [](B b, int32_t v) { b.getTerm().setEnd(v); }};
  for (size_t i = 0; i < setters.size(); ++i)
    for (int32_t bad : kBadDays)
      EXPECT_FALSE(decode_subscription(subscription_row([&](B b) { setters[i](b, bad); })))
          << "field " << i << " = " << bad;
}

TEST(HostileRowDecoding, ChargeLineAndInvoiceDatesRejectDaysOutsideTheCalendarRange) {
  using L = rows::ChargeLine::Builder;
  std::vector<std::function<void(L, int32_t)>> setters = {
      [](L l, int32_t v) { l.setPeriodStart(v); }, [](L l, int32_t v) { l.setPeriodEnd(v); },
      [](L l, int32_t v) { l.setChargeDate(v); }};
  for (int32_t bad : kBadDays) {
    for (const auto& set : setters) {
      EXPECT_FALSE(decode_issued_invoice(invoice_row([&](auto b) { set(b.getLines()[0], bad); })));
      EXPECT_FALSE(decode_charge_line(line_row([&](auto b) { set(b, bad); })));
    }
    EXPECT_FALSE(decode_issued_invoice(invoice_row([&](auto b) { b.setInvoiceDate(bad); })));
  }
}

TEST(HostileRowDecoding, AnAnchorAfterThe28thIsRejected) {
  int32_t jan29 = day("2017-01-29").days();
  EXPECT_FALSE(decode_subscription(subscription_row([&](auto b) {
    b.getTerm().setStart(jan29);
    b.getTerm().setAnchor(jan29);
    b.getTerm().setEnd(jan29 + 365);
  })));
}

TEST(HostileRowDecoding, UnknownEnumValuesAndCurrencyExponentsAreRejected) {
  EXPECT_FALSE(decode_subscription(subscription_row([](auto b) { b.setStatus(4); })));
  EXPECT_FALSE(decode_subscription(subscription_row([](auto b) { b.setFrequency(2); })));
  for (int8_t digits : {-1, 7, 127, -128}) {
    EXPECT_FALSE(decode_subscription(subscription_row([&](auto b) { b.setCurrencyDigits(digits); })));
    EXPECT_FALSE(decode_issued_invoice(invoice_row([&](auto b) { b.setCurrencyDigits(digits); })));
    EXPECT_FALSE(decode_charge_line(line_row([&](auto b) { b.setCurrencyDigits(digits); })));
  }
  EXPECT_FALSE(decode_charge_line(line_row([](auto b) { b.setType(6); })));
  EXPECT_FALSE(decode_charge_line(line_row([](auto b) { b.setFrequency(2); })));
  EXPECT_FALSE(decode_charge_line(line_row([](auto b) { b.setFormula(3); })));
}

TEST(HostileRowDecoding, DigestsOfTheWrongLengthAreRejected) {
  std::string five(5, 'x');
  capnp::Data::Reader bytes(reinterpret_cast<const kj::byte*>(five.data()), five.size());
  EXPECT_FALSE(decode_issued_invoice(invoice_row([&](auto b) { b.setLinesSha256(bytes); })));
  EXPECT_FALSE(decode_issued_invoice(invoice_row([&](auto b) { b.setChainHead(bytes); })));
}

TEST(HostileRowDecoding, AHeaderClaimingAHugeMessageIsRejectedWithoutReadingIt) {
  // The packed segment table "one segment (count - 1 = 0) of 0x0fffffff words" (2 GiB): tag 0xf0
  // (bytes 4..7 non-zero), then those bytes; then nothing. The limit derived from the stored
  // length refuses it before the reader allocates the claimed size.
  std::string bytes = std::string("\xf0\xff\xff\xff\x0f", 5);
  EXPECT_FALSE(decode_subscription(bytes));
  EXPECT_FALSE(decode_customer(bytes));
  EXPECT_FALSE(decode_charge_line(bytes));
  EXPECT_FALSE(decode_issued_invoice(bytes));
}

}  // namespace
}  // namespace subledger
