#include "events/codec.h"

#include <gtest/gtest.h>

namespace subledger {
namespace {

Event envelope(EventPayload payload) {
  Event e;
  e.seq = 42;
  e.stream = stream_of(payload);
  e.stream_version = 3;
  e.effective_date = *Date::parse("2017-01-15");
  e.recorded_at_micros = 1'700'000'000'123'456;
  e.actor = "ops@example";
  e.request_id = "r-42";
  e.payload = std::move(payload);
  return e;
}

TEST(Codec, EveryPayloadRoundTrips) {
  Term term{*Date::parse("2017-01-30"), *Date::parse("2017-02-01"), *Date::parse("2018-02-01"),
            12'345'000};
  Term promoted = term;
  promoted.promotion_id = "E1-MIDMARKET";
  promoted.percent_off = 30;
  std::vector<EventPayload> payloads = {
      PartnerRegistered{"P1", "DE", "EUR", 1},
      CustomerCreated{"C1", "P1", "RU", "EUR", "Acme", "7707083893", "+7", "M"},
      OfferDefined{"VOICE", "Voice", Segment::kNonprofit, false, {"E3", "BP"}, 300, 2},
      PricePublished{"E3", "USD", 20'000'000, *Date::parse("2016-01-01")},
      SubscriptionCreated{"S1", "C1", "VOICE", "S0", 10, Frequency::kAnnual, term, "USD"},
      TrialStarted{"T1", "C1", "E3", 25, *Date::parse("2018-10-01")},
      TrialConverted{"T1", Frequency::kMonthly, term, "EUR"},
      TrialExpired{"T2"},
      SeatsChanged{"S1", 10, 15},
      SubscriptionCancelled{"A1", "S1"},
      SubscriptionReactivated{"S1"},
      AutoRenewSet{"S1", false},
      SubscriptionRenewed{"S1", true, term},
      SubscriptionExpired{"S1"},
      BillingRun{*Date::parse("2017-01-31"), Date(), 4},
      InvoiceIssued{"C1-20170120", "C1", "P1", *Date::parse("2017-01-20"), "USD", -130192, 2,
                    std::string(32, '\x7f'), std::string(32, '\x01')},
      // BILLING_RULES 12-15 (issue 18).
      SubscriptionRenewed{"S1", false, promoted},
      CustomerCreated{"C2", "P1", "US", "USD", "", "", "", "", Segment::kEducation},
      OfferDefined{"PO36", "PO", Segment::kGovernment, false, {}, 0, 0, {"US", "CA"}, 36},
      PromotionDefined{"BV-INTRO", {"BV", "E1"}, 100, *Date::parse("2020-11-01"),
                       *Date::parse("2021-04-30"), true, false, {"BR"}, 500, true, {"AC"}, 3650},
      OfferRetired{"PSA", *Date::parse("2020-11-01")},
      CustomerUpdated{"C2", "Museum", "", "", "Q", Segment::kNonprofit},
  };
  EventDecoder decoder;
  for (const auto& p : payloads) {
    Event original = envelope(p);
    original.prev_hash = std::string(32, '\x01');
    std::string stored = encode_event(original);
    original.hash = stored_event_hash(stored);
    Event back;
    ASSERT_TRUE(decoder.decode(stored, back).ok()) << event_type_name(p);
    EXPECT_EQ(back, original) << event_type_name(p);
  }
}

TEST(Codec, CorruptBytesAreDataLossNotACrash) {
  std::string bytes = encode_event(envelope(SeatsChanged{"S1", 1, 2}));
  EventDecoder decoder;
  Event out;
  absl::Status cut = decoder.decode(bytes.substr(0, bytes.size() - 3), out);
  EXPECT_TRUE(absl::IsDataLoss(cut)) << cut;
  EXPECT_EQ(cut.message(), "content does not match its hash (the stored event was altered)");
  absl::Status short_value = decoder.decode(std::string(16, '\xff'), out);
  EXPECT_TRUE(absl::IsDataLoss(short_value)) << short_value;
  EXPECT_EQ(short_value.message(), "stored value too short for an event and its hash");
  EXPECT_EQ(at_event(7, short_value),
            absl::DataLossError("event 7: stored value too short for an event and its hash"));
}

TEST(Codec, EveryFlippedByteIsCaughtByTheTrailer) {
  Event e = envelope(SeatsChanged{"S1", 1, 2});
  e.prev_hash = std::string(32, '\x05');
  const std::string stored = encode_event(e);
  ASSERT_EQ(stored_event_hash(stored).size(), kEventHashBytes);
  EventDecoder decoder;
  Event out;
  for (size_t i = 0; i < stored.size(); ++i) {
    std::string bad = stored;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    EXPECT_TRUE(absl::IsDataLoss(decoder.decode(bad, out))) << "byte " << i;
  }
}

TEST(Codec, EncodingRefusesNothingButDecodeChecksInvariants) {
  Event e = envelope(SeatsChanged{"S1", 1, 2});
  e.stream.id = "S2";  // stream does not match the payload
  EventDecoder decoder;
  Event out;
  EXPECT_EQ(check_event(e), absl::InvalidArgumentError("stream does not match payload"));
  // Read back, the same defect is a damaged log, not a caller's mistake.
  EXPECT_EQ(decoder.decode(encode_event(e), out),
            absl::DataLossError("stream does not match payload"));
}

}  // namespace
}  // namespace subledger
