// The commands of issue 18 (define_promotion, retire_offer, update_customer) and the rejection
// codes' one table, decided in memory (BILLING_RULES 12, 13, 15; INTERFACE.md; SERVER.md).
#include <gtest/gtest.h>

#include "ledger/rejection.h"
#include "support/fold.h"

namespace subledger::testing {
namespace {

TEST(RejectionCodes, EveryCodeHasItsServerStatus) {
  EXPECT_EQ(http_status_of_code("INVALID_ARGUMENT"), 400);
  EXPECT_EQ(http_status_of_code("UNKNOWN_OFFER"), 404);
  EXPECT_EQ(http_status_of_code("ALREADY_EXISTS"), 409);
  EXPECT_EQ(http_status_of_code("OFFER_RETIRED"), 422);
  EXPECT_EQ(http_status_of_code("NOT_AVAILABLE_IN_MARKET"), 422);
  EXPECT_EQ(http_status_of_code("SEGMENT_NOT_ELIGIBLE"), 422);
  EXPECT_EQ(http_status_of_code("UNAVAILABLE"), 503);
  EXPECT_EQ(http_status_of_code("NO_SUCH_CODE"), 500) << "a code outside the set is a defect";
  for (auto c : {RejectionCode::kInvalidArgument, RejectionCode::kSegmentNotEligible})
    EXPECT_EQ(code_named(code_name(c)), c);
}

void customers(Fold& f) {
  f.given(PartnerRegistered{"P1", "US", "USD", 20});
  f.given(CustomerCreated{"RU1", "P1", "RU", "USD", "Romashka", "7707083893", "+74951234567", ""});
  f.given(CustomerCreated{"US1", "P1", "US", "USD", "Contoso", "", "", ""});
}

TEST(UpdateCustomer, NullIsAbsentAndAnEmptyStringIsAValue) {
  Fold f;
  customers(f);
  EXPECT_EQ(f.code(R"({"cmd":"update_customer","request_id":"u","customer_id":"RU1",)"
                   R"("phone":null})"),
            "INVALID_ARGUMENT")
      << "only null fields: nothing to update";
  EXPECT_EQ(f.code(R"({"cmd":"update_customer","request_id":"u","customer_id":"RU1",)"
                   R"("phone":""})"),
            "PHONE_REQUIRED");
  f.accept(R"({"cmd":"update_customer","request_id":"u","customer_id":"US1","phone":"",)"
           R"("company_name":null,"middle_name":"Q"})");
  const CustomerCreated& us1 = f.state.catalog().customer("US1")->def;
  EXPECT_EQ(us1.company_name, "Contoso") << "null leaves the field as it was";
  EXPECT_EQ(us1.middle_name, "Q");
}

TEST(UpdateCustomer, NullAndAbsentAreOnePayloadAndEmptyIsAnother) {
  auto hash = [](const char* json) { return payload_hash(*parse_command(json).command); };
  const char* absent =
      R"({"cmd":"update_customer","request_id":"u","customer_id":"C","phone":"1"})";
  const char* null_name =
      R"({"cmd":"update_customer","request_id":"u","customer_id":"C","phone":"1","middle_name":null})";
  const char* empty_name =
      R"({"cmd":"update_customer","request_id":"u","customer_id":"C","phone":"1","middle_name":""})";
  EXPECT_EQ(hash(absent), hash(null_name));
  EXPECT_NE(hash(absent), hash(empty_name));
}

TEST(UpdateCustomer, GivenFieldsReplaceAndTheNextUpdateIsScreenedWithThem) {
  Fold f;
  customers(f);
  f.accept(R"({"cmd":"update_customer","request_id":"u","customer_id":"RU1",)"
           R"("organization_registration_number":"770708389","company_name":"Romashka LLC"})");
  const CustomerCreated& ru1 = f.state.catalog().customer("RU1")->def;
  EXPECT_EQ(ru1.organization_registration_number, "770708389");
  EXPECT_EQ(ru1.company_name, "Romashka LLC");
  EXPECT_EQ(ru1.phone, "+74951234567") << "a field not given keeps its value";
  EXPECT_EQ(f.code(R"({"cmd":"update_customer","request_id":"v","customer_id":"RU1",)"
                   R"("phone":"+74957654321"})"),
            "ACCEPTED");
}

TEST(UpdateCustomer, PartnerCountryAndCurrencyAreUnknownFields) {
  Fold f;
  customers(f);
  for (const char* field : {"partner_id", "country", "currency"})
    EXPECT_EQ(
        f.code(std::string(R"({"cmd":"update_customer","request_id":"u","customer_id":"US1",")") +
               field + R"(":"GB"})"),
        "INVALID_ARGUMENT")
        << field;
}

TEST(UpdateCustomer, ASegmentChangeAffectsLaterPurchasesOnly) {
  Fold f;
  customers(f);
  f.given(OfferDefined{"A1", "A1", Segment::kEducation, false, {}, 0, 0});
  f.given(PricePublished{"A1", "USD", 2'500'000, D("2020-01-01")}, D("2020-01-01"));
  const char* buy = R"({"cmd":"create_subscription","request_id":"s","subscription_id":"S1",)"
                    R"("customer_id":"US1","offer_id":"A1","seats":4,"billing_frequency":"annual",)"
                    R"("date":"2021-01-10"})";
  EXPECT_EQ(f.code(buy), "SEGMENT_NOT_ELIGIBLE");
  f.accept(
      R"({"cmd":"update_customer","request_id":"u","customer_id":"US1","segment":"education"})");
  f.accept(buy);
  f.accept(
      R"({"cmd":"update_customer","request_id":"v","customer_id":"US1","segment":"commercial"})");
  EXPECT_EQ(f.code(R"({"cmd":"change_seats","request_id":"c","subscription_id":"S1","seats":5,)"
                   R"("date":"2021-03-01"})"),
            "ACCEPTED")
      << "a subscription already bought keeps its life";
}

TEST(DefinePromotion, ChecksItsFieldsOffersAndWindow) {
  Fold f;
  customers(f);
  f.given(OfferDefined{"BV", "BV", Segment::kCommercial, false, {}, 0, 0});
  auto define = [&](const std::string& fields) {
    return f.code(R"({"cmd":"define_promotion","request_id":"p","promotion_id":"P",)" + fields +
                  "}");
  };
  const std::string window = R"("purchase_from":"2020-11-01","purchase_to":"2021-04-30")";
  EXPECT_EQ(define(R"("offer_ids":["BV"],"percent_off":0,"applies_to":["new"],)" + window),
            "INVALID_ARGUMENT");
  EXPECT_EQ(define(R"("offer_ids":["BV"],"percent_off":101,"applies_to":["new"],)" + window),
            "INVALID_ARGUMENT");
  EXPECT_EQ(define(R"("offer_ids":["BV"],"percent_off":10,"applies_to":["old"],)" + window),
            "INVALID_ARGUMENT");
  EXPECT_EQ(define(R"("offer_ids":[],"percent_off":10,"applies_to":["new"],)" + window),
            "INVALID_ARGUMENT");
  EXPECT_EQ(define(R"("offer_ids":["NOPE"],"percent_off":10,"applies_to":["new"],)" + window),
            "UNKNOWN_OFFER");
  EXPECT_EQ(define(R"("offer_ids":["BV"],"percent_off":10,"applies_to":["new"],)"
                   R"("purchase_from":"2021-01-02","purchase_to":"2021-01-01")"),
            "INVALID_ARGUMENT");
  EXPECT_EQ(define(R"("offer_ids":["BV"],"percent_off":10,"applies_to":["new"],)"
                   R"("exclude_cancel_days":3651,)" +
                   window),
            "INVALID_ARGUMENT");
  // Decisions where the text is silent: an unknown market is INVALID_ARGUMENT (section 12:
  // "anything else"), and excluded offers must be defined like offer_ids.
  EXPECT_EQ(define(R"("offer_ids":["BV"],"percent_off":10,"applies_to":["new"],)"
                   R"("markets":["XX"],)" + window),
            "INVALID_ARGUMENT");
  EXPECT_EQ(define(R"("offer_ids":["BV"],"percent_off":10,"applies_to":["new"],)"
                   R"("exclude_offers":["NOPE"],)" + window),
            "UNKNOWN_OFFER");
  EXPECT_EQ(f.code(R"({"cmd":"define_offer","request_id":"o","offer_id":"X","name":"x",)"
                   R"("markets":["XX"]})"),
            "INVALID_ARGUMENT");
  EXPECT_EQ(define(R"("offer_ids":["BV"],"percent_off":100,"applies_to":["new","renewal"],)"
                   R"("exclude_cancel_days":3650,"purchase_from":"2021-01-01",)"
                   R"("purchase_to":"2021-01-01")"),
            "ACCEPTED");
}

}  // namespace
}  // namespace subledger::testing
