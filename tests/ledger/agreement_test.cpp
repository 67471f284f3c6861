// accept_agreement (INTERFACE.md): a customer's acceptance of a customer agreement, once per type;
// the contact is personal data kept in the customer's projection and the full event only.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "events/codec.h"
#include "ledger/ledger.h"
#include "projections/projection_rows.h"
#include "projections/views.h"
#include "support/fold.h"
#include "support/process.h"

namespace subledger::testing {
namespace {

const char* kAccept =
    R"({"cmd":"accept_agreement","request_id":"a1","customer_id":"C1",)"
    R"("agreement_type":"MicrosoftCustomerAgreement","date_agreed":"2017-01-10",)"
    R"("contact":{"first_name":"Ana","last_name":"Lima","email":"ana@contoso.example"}})";

std::string with(std::string json, const std::string& from, const std::string& to) {
  json.replace(json.find(from), from.size(), to);
  return json;
}

TEST(Agreement, AcceptedOnceThenTheSameTypeIsAlreadyAccepted) {
  Fold f;
  f.standard_catalog();
  Decision d = f.accept(kAccept);
  ASSERT_EQ(d.events.size(), 1u);
  const auto& e = std::get<AgreementAccepted>(d.events[0].payload);
  EXPECT_EQ(e.email, "ana@contoso.example");
  EXPECT_EQ(d.events[0].date, D("2017-01-10"));
  EXPECT_EQ(f.code(with(kAccept, "\"a1\"", "\"a2\"")), "AGREEMENT_ALREADY_ACCEPTED");
  // Another type for the same customer is a new acceptance.
  EXPECT_EQ(f.code(with(kAccept, "MicrosoftCustomerAgreement", "MicrosoftCloudAgreement")),
            "ACCEPTED");
}

TEST(Agreement, ScopedIdsOfTheCustomersOwnPartnerAreAccepted) {
  TempDir dir("agreement-scope");
  std::string error;
  auto l = Ledger::open(dir.str(), {}, error);
  ASSERT_TRUE(l) << error;
  for (const char* line :
       {R"({"cmd":"register_partner","request_id":"p","partner_id":"P1","country":"US","currency":"USD","billing_day":20})",
        R"({"cmd":"create_customer","request_id":"P1:c","customer_id":"P1:C1","partner_id":"P1","country":"US","currency":"USD"})"})
    ASSERT_TRUE(l->submit(line).ok) << line;
  std::string scoped = with(with(kAccept, "\"a1\"", "\"P1:a1\""), "\"C1\"", "\"P1:C1\"");
  CommandResult ok = l->submit(scoped);
  EXPECT_TRUE(ok.ok) << ok.message;
  CommandResult other = l->submit(with(scoped, "\"P1:a1\"", "\"P2:a1\""));
  EXPECT_EQ(other.code, "INVALID_ARGUMENT");
}

TEST(Agreement, UnknownCustomerIsRejected) {
  Fold f;
  f.standard_catalog();
  EXPECT_EQ(f.code(with(kAccept, "\"C1\"", "\"C9\"")), "UNKNOWN_CUSTOMER");
}

TEST(Agreement, ContactMustBeComplete) {
  Fold f;
  f.standard_catalog();
  EXPECT_EQ(f.code(with(kAccept, "\"email\":\"ana@contoso.example\"", "\"email\":\"ana\"")),
            "INVALID_ARGUMENT");
  EXPECT_EQ(f.code(with(kAccept, "\"first_name\":\"Ana\",", "")), "INVALID_ARGUMENT");
  EXPECT_EQ(f.code(with(kAccept, "\"email\":", "\"phone\":\"1\",\"email\":")), "INVALID_ARGUMENT");
  EXPECT_EQ(f.code(with(kAccept, "MicrosoftCustomerAgreement", "Microsoft Customer")),
            "INVALID_ARGUMENT");
}

TEST(Agreement, EventRoundTripsThroughTheCodecAndShowsItsContactInFullViews) {
  Fold f;
  f.standard_catalog();
  Decision d = f.accept(kAccept);
  Event e = stamp_event(f.state, d.events[0].payload, d.events[0].date, "cli", "a1", 0).event;
  EventDecoder decoder;
  Event back;
  ASSERT_TRUE(decoder.decode(encode_event(e), back).ok());
  EXPECT_EQ(back.payload, e.payload);
  auto j = nlohmann::json::parse(event_json(back));
  EXPECT_EQ(j["type"], "AgreementAccepted");
  EXPECT_EQ(j["stream"], "customer/C1");
  EXPECT_EQ(j["data"]["contact"]["last_name"], "Lima");
}

TEST(Agreement, SurvivesReopenThroughTheCustomerRow) {
  TempDir dir("agreement-rows");
  std::string error;
  {
    auto l = Ledger::open(dir.str(), {}, error);
    ASSERT_TRUE(l) << error;
    for (const char* line :
         {R"({"cmd":"register_partner","request_id":"p","partner_id":"P1","country":"US","currency":"USD","billing_day":20})",
          R"({"cmd":"create_customer","request_id":"c","customer_id":"C1","partner_id":"P1","country":"US","currency":"USD"})",
          kAccept})
      ASSERT_TRUE(l->submit(line).ok) << line;
    ASSERT_EQ(l->commit(), absl::OkStatus());
  }
  auto l = Ledger::open(dir.str(), {}, error);
  ASSERT_TRUE(l) << error;
  EXPECT_TRUE(l->open_report().from_checkpoint);
  const Customer* c = l->state().catalog().customer("C1");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->agreements.size(), 1u);
  EXPECT_EQ(c->agreements[0].email, "ana@contoso.example");
  CommandResult again = l->submit(with(kAccept, "\"a1\"", "\"a3\""));
  EXPECT_EQ(again.code, "AGREEMENT_ALREADY_ACCEPTED");
  auto shown = nlohmann::json::parse(agreement_json("C1", c->agreements[0], false));
  EXPECT_FALSE(shown.contains("contact"));
}

}  // namespace
}  // namespace subledger::testing
