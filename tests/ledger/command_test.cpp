// The canonical form of a command, which idempotency hashes: ledgers remember these hashes, so
// its bytes never change. The expected texts were printed by the form's first printer (a
// nlohmann::json object of the fields, dumped) for every command type and field kind.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ledger/command.h"
#include "ledger/reports.h"

namespace subledger {
namespace {

Command parsed(const std::string& line) {
  ParsedCommand p = parse_command(line);
  EXPECT_TRUE(p.command) << line << ": " << p.rejection.message;
  return p.command.value_or(Command{});
}

TEST(CanonicalPayload, IsTheFirstPrintersTextForEveryCommandTypeAndFieldKind) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"j({"cmd":"register_partner","request_id":"r1","partner_id":"P1","country":"US","currency":"USD","billing_day":20})j",
       R"j({"actor":"cli","billing_day":20,"cmd":"register_partner","country":"US","currency":"USD","partner_id":"P1"})j"},
      {R"j({"cmd":"register_partner","request_id":"r2","partner_id":"P-2.x~y","country":"GB","currency":"GBP","billing_day":1,"actor":"ana"})j",
       R"j({"actor":"ana","billing_day":1,"cmd":"register_partner","country":"GB","currency":"GBP","partner_id":"P-2.x~y"})j"},
      {R"j({"cmd":"create_customer","request_id":"r3","customer_id":"C1","partner_id":"P1","country":"US","currency":"USD"})j",
       R"j({"actor":"cli","cmd":"create_customer","company_name":"","country":"US","currency":"USD","customer_id":"C1","middle_name":"","organization_registration_number":"","partner_id":"P1","phone":""})j"},
      {R"j({"cmd":"create_customer","request_id":"r4","customer_id":"P1:C2","partner_id":"P1","country":"DE","currency":"EUR","company_name":"Müller \"&\" Söhne \\ GmbH","organization_registration_number":"HRB 123/456","phone":"+49 (0)30 1234","middle_name":"Zoë 🎉","segment":"education"})j",
       R"j({"actor":"cli","cmd":"create_customer","company_name":"Müller \"&\" Söhne \\ GmbH","country":"DE","currency":"EUR","customer_id":"P1:C2","middle_name":"Zoë 🎉","organization_registration_number":"HRB 123/456","partner_id":"P1","phone":"+49 (0)30 1234","segment":"education"})j"},
      {R"j({"cmd":"create_customer","request_id":"r5","customer_id":"C3","partner_id":"P1","country":"US","currency":"USD","segment":"commercial","company_name":"tilde ~ end"})j",
       R"j({"actor":"cli","cmd":"create_customer","company_name":"tilde ~ end","country":"US","currency":"USD","customer_id":"C3","middle_name":"","organization_registration_number":"","partner_id":"P1","phone":""})j"},
      {R"j({"cmd":"update_customer","request_id":"r6","customer_id":"C1","phone":"555"})j",
       R"j({"actor":"cli","cmd":"update_customer","company_name":null,"customer_id":"C1","middle_name":null,"organization_registration_number":null,"phone":"555","segment":null})j"},
      {R"j({"cmd":"update_customer","request_id":"r7","customer_id":"C1","company_name":"","middle_name":null,"segment":"nonprofit"})j",
       R"j({"actor":"cli","cmd":"update_customer","company_name":"","customer_id":"C1","middle_name":null,"organization_registration_number":null,"phone":null,"segment":"nonprofit"})j"},
      {R"j({"cmd":"update_customer","request_id":"r8","customer_id":"C1","organization_registration_number":"N/A </script>","segment":"government"})j",
       R"j({"actor":"cli","cmd":"update_customer","company_name":null,"customer_id":"C1","middle_name":null,"organization_registration_number":"N/A </script>","phone":null,"segment":"government"})j"},
      {R"j({"cmd":"define_offer","request_id":"r9","offer_id":"E3","name":"Office 365 E3"})j",
       R"j({"actor":"cli","addon_of":[],"cmd":"define_offer","max_per_customer":0,"max_seats":0,"name":"Office 365 E3","offer_id":"E3","segment":"commercial","trial_eligible":false})j"},
      {R"j({"cmd":"define_offer","request_id":"r10","offer_id":"ADD","name":"Add-on","segment":"education","trial_eligible":true,"addon_of":["E3","E5"],"max_seats":300,"max_per_customer":2,"markets":["US","CA"],"term_months":36})j", R"j({"actor":"cli","addon_of":["E3","E5"],"cmd":"define_offer","markets":["US","CA"],"max_per_customer":2,"max_seats":300,"name":"Add-on","offer_id":"ADD","segment":"education","term_months":36,"trial_eligible":true})j"},
      {R"j({"cmd":"define_offer","request_id":"r11","offer_id":"M","name":"M","markets":[],"term_months":12,"addon_of":[]})j",
       R"j({"actor":"cli","addon_of":[],"cmd":"define_offer","max_per_customer":0,"max_seats":0,"name":"M","offer_id":"M","segment":"commercial","trial_eligible":false})j"},
      {R"j({"cmd":"retire_offer","request_id":"r12","offer_id":"E3","date":"2021-03-01"})j",
       R"j({"actor":"cli","cmd":"retire_offer","date":"2021-03-01","offer_id":"E3"})j"},
      {R"j({"cmd":"define_promotion","request_id":"r13","promotion_id":"PR1","offer_ids":["E3"],"percent_off":15,"purchase_from":"2020-11-01","purchase_to":"2021-01-31","applies_to":["new","renewal"]})j",
       R"j({"actor":"cli","applies_to":["new","renewal"],"cmd":"define_promotion","exclude_cancel_days":30,"exclude_offers":[],"markets":[],"max_seats":0,"new_customer_only":false,"offer_ids":["E3"],"percent_off":15,"promotion_id":"PR1","purchase_from":"2020-11-01","purchase_to":"2021-01-31"})j"},
      {R"j({"cmd":"define_promotion","request_id":"r14","promotion_id":"PR2","offer_ids":["E3","E5"],"percent_off":100,"purchase_from":"2020-11-01","purchase_to":"2020-11-30","applies_to":["new"],"markets":["US"],"max_seats":10,"new_customer_only":true,"exclude_offers":["X"],"exclude_cancel_days":7})j",
       R"j({"actor":"cli","applies_to":["new"],"cmd":"define_promotion","exclude_cancel_days":7,"exclude_offers":["X"],"markets":["US"],"max_seats":10,"new_customer_only":true,"offer_ids":["E3","E5"],"percent_off":100,"promotion_id":"PR2","purchase_from":"2020-11-01","purchase_to":"2020-11-30"})j"},
      {R"j({"cmd":"publish_price","request_id":"r15","offer_id":"E3","currency":"USD","monthly_price":"20.00","effective_from":"2016-01-01"})j",
       R"j({"actor":"cli","cmd":"publish_price","currency":"USD","effective_from":"2016-01-01","monthly_price":20000000,"offer_id":"E3"})j"},
      {R"j({"cmd":"publish_price","request_id":"r16","offer_id":"E3","currency":"JPY","monthly_price":"2190","effective_from":"2020-02-29"})j",
       R"j({"actor":"cli","cmd":"publish_price","currency":"JPY","effective_from":"2020-02-29","monthly_price":2190000000,"offer_id":"E3"})j"},
      {R"j({"cmd":"create_subscription","request_id":"r17","subscription_id":"S1","customer_id":"C1","offer_id":"E3","seats":5,"date":"2020-01-31"})j",
       R"j({"actor":"cli","billing_frequency":"","cmd":"create_subscription","customer_id":"C1","date":"2020-01-31","offer_id":"E3","parent_subscription_id":"","seats":5,"subscription_id":"S1"})j"},
      {R"j({"cmd":"create_subscription","request_id":"r18","subscription_id":"S2","customer_id":"C1","offer_id":"ADD","seats":1,"billing_frequency":"annual","date":"2020-01-31","parent_subscription_id":"S1"})j",
       R"j({"actor":"cli","billing_frequency":"annual","cmd":"create_subscription","customer_id":"C1","date":"2020-01-31","offer_id":"ADD","parent_subscription_id":"S1","seats":1,"subscription_id":"S2"})j"},
      {R"j({"cmd":"create_subscription","request_id":"r19","subscription_id":"S3","customer_id":"C1","offer_id":"E3","seats":10000,"billing_frequency":"monthly","date":"2020-12-31","actor":"ops.team"})j", R"j({"actor":"ops.team","billing_frequency":"monthly","cmd":"create_subscription","customer_id":"C1","date":"2020-12-31","offer_id":"E3","parent_subscription_id":"","seats":10000,"subscription_id":"S3"})j"},
      {R"j({"cmd":"start_trial","request_id":"r20","subscription_id":"T1","customer_id":"C1","offer_id":"E3","date":"2020-02-01"})j",
       R"j({"actor":"cli","cmd":"start_trial","customer_id":"C1","date":"2020-02-01","offer_id":"E3","subscription_id":"T1"})j"},
      {R"j({"cmd":"convert_trial","request_id":"r21","subscription_id":"T1","billing_frequency":"annual","date":"2020-02-15"})j",
       R"j({"actor":"cli","billing_frequency":"annual","cmd":"convert_trial","date":"2020-02-15","subscription_id":"T1"})j"},
      {R"j({"cmd":"change_seats","request_id":"r22","subscription_id":"S1","seats":0,"date":"2020-03-01"})j",
       R"j({"actor":"cli","cmd":"change_seats","date":"2020-03-01","seats":0,"subscription_id":"S1"})j"},
      {R"j({"cmd":"cancel","request_id":"r23","subscription_id":"S1","date":"2020-03-02"})j",
       R"j({"actor":"cli","cmd":"cancel","date":"2020-03-02","subscription_id":"S1"})j"},
      {R"j({"cmd":"reactivate","request_id":"r24","subscription_id":"S1","date":"2020-03-03"})j",
       R"j({"actor":"cli","cmd":"reactivate","date":"2020-03-03","subscription_id":"S1"})j"},
      {R"j({"cmd":"renew","request_id":"r25","subscription_id":"S1","date":"2021-01-31"})j",
       R"j({"actor":"cli","cmd":"renew","date":"2021-01-31","subscription_id":"S1"})j"},
      {R"j({"cmd":"set_auto_renew","request_id":"r26","subscription_id":"S1","enabled":false,"date":"2020-04-01"})j",
       R"j({"actor":"cli","cmd":"set_auto_renew","date":"2020-04-01","enabled":false,"subscription_id":"S1"})j"},
      {R"j({"cmd":"set_auto_renew","request_id":"r27","subscription_id":"S1","enabled":true,"date":"2020-04-02"})j",
       R"j({"actor":"cli","cmd":"set_auto_renew","date":"2020-04-02","enabled":true,"subscription_id":"S1"})j"},
      {R"j({"cmd":"run_billing","request_id":"r28","through":"2020-12-31"})j",
       R"j({"actor":"cli","cmd":"run_billing","through":"2020-12-31"})j"},
      {R"j({"cmd":"accept_agreement","request_id":"r29","customer_id":"C1","agreement_type":"MicrosoftCustomerAgreement","date_agreed":"2020-01-01","contact":{"first_name":"Ana","last_name":"O'Neil \"Jr\"","email":"ana@example.com"}})j",
       R"j({"actor":"cli","agreement_type":"MicrosoftCustomerAgreement","cmd":"accept_agreement","contact":{"email":"ana@example.com","first_name":"Ana","last_name":"O'Neil \"Jr\""},"customer_id":"C1","date_agreed":"2020-01-01"})j"},
      {R"j({"cmd":"accept_agreement","request_id":"r30","customer_id":"C1","agreement_type":"MCA","date_agreed":"2020-01-01","contact":{"email":"zoë@example.com","last_name":"Ümlaut","first_name":"Ünïcode"}})j",
       R"j({"actor":"cli","agreement_type":"MCA","cmd":"accept_agreement","contact":{"email":"zoë@example.com","first_name":"Ünïcode","last_name":"Ümlaut"},"customer_id":"C1","date_agreed":"2020-01-01"})j"},
  };
  for (const auto& [line, expected] : cases) {
    EXPECT_EQ(canonical_payload(parsed(line)), expected) << line;
    // The same text is what the JSON library prints for the object it denotes.
    EXPECT_EQ(nlohmann::json::parse(expected).dump(), expected);
  }
}

TEST(CanonicalPayload, PrintsEscapesAsTheLibraryDoesAndRefusesBytesThatAreNotUtf8) {
  // Commands built in code need not come through the parser's free-text checks.
  Command c = parsed(
      R"j({"cmd":"create_customer","request_id":"x","customer_id":"C","partner_id":"P","country":"US","currency":"USD"})j");
  c.company_name = "ctl \x01\x08\x0c\n\r\t\x1f\x7f \"q\" \\ end";
  c.phone = "\xc3\xa9";
  EXPECT_EQ(
      canonical_payload(c),
      R"j({"actor":"cli","cmd":"create_customer","company_name":"ctl \u0001\b\f\n\r\t\u001f \"q\" \\ end","country":"US","currency":"USD","customer_id":"C","middle_name":"","organization_registration_number":"","partner_id":"P","phone":"é"})j");
  // Printable ASCII with only a quote or only a backslash to escape.
  for (const char* text : {"plain \\ backslash", "plain \" quote", "\\", "\""}) {
    c.company_name = text;
    const std::string payload = canonical_payload(c);
    nlohmann::json back = nlohmann::json::parse(payload);
    EXPECT_EQ(back.dump(), payload);
    EXPECT_EQ(back.at("company_name"), text);
  }
  c.phone = "\xff bad";
  EXPECT_THROW(canonical_payload(c), nlohmann::json::type_error);
}

TEST(CanonicalPayload, TheServersObjectPathDecidesAsTheLinePath) {
  // parse_command_object (a request's object, not printed and read again) accepts and refuses
  // what parse_command does, with the same message.
  const std::vector<std::string> lines = {
      R"j({"cmd":"change_seats","request_id":"r","subscription_id":"S","seats":3,"date":"2020-01-31"})j",
      R"j({"cmd":"change_seats","request_id":"r","subscription_id":"S","seats":3.5,"date":"2020-01-31"})j",
      R"j({"cmd":"change_seats","request_id":"r","subscription_id":"S","seats":1e9,"date":"2020-01-31"})j",
      R"j({"cmd":"change_seats","request_id":"r","subscription_id":"S","date":"2020-01-31"})j",
      R"j({"cmd":"change_seats","request_id":"r","subscription_id":"S","seats":3,"date":"2020-01-31","x":1})j",
      R"j({"cmd":"nope","request_id":"r"})j",
      R"j({"cmd":"cancel","request_id":"bad id","subscription_id":"S","date":"2020-01-31"})j",
      R"j({"cmd":"cancel","request_id":"r","subscription_id":"S","date":"2020-02-30"})j",
      R"j({"cmd":"cancel","request_id":"r","subscription_id":"S","date":"2020-01-31","actor":"system"})j",
      R"j({"cmd":"update_customer","request_id":"r","customer_id":"C","phone":null})j",
      R"j({"cmd":"define_offer","request_id":"r","offer_id":"O","name":"N","markets":["US",1]})j",
      R"j([1,2])j",
  };
  for (const std::string& line : lines) {
    ParsedCommand by_line = parse_command(line);
    ParsedCommand by_object = parse_command_object(nlohmann::json::parse(line));
    ASSERT_EQ(by_line.command.has_value(), by_object.command.has_value()) << line;
    EXPECT_EQ(by_line.rejection.code, by_object.rejection.code) << line;
    EXPECT_EQ(by_line.rejection.message, by_object.rejection.message) << line;
    EXPECT_EQ(by_line.request_id, by_object.request_id) << line;
    if (by_line.command) {
      EXPECT_EQ(canonical_payload(*by_line.command), canonical_payload(*by_object.command));
    }
  }
}

// An order's answer is printed member by member: the text is the one a JSON object of the same
// members prints, and the partner's scope is off every id that begins with it (and only those).
TEST(OrderJson, IsTheTextOfTheSameJsonObjectWithTheScopeOffItsIds) {
  const std::vector<OrderLine> lines = {
      {"P1:S1", "E3", "", 10, Frequency::kAnnual, false},
      {"P1:A1", "P1:AD", "P1:S1", 2, Frequency::kMonthly, false},
      {"P1:T1", "E3", "", 25, std::nullopt, true},
      {"S9", "O \"q\" \\ é", "", 0, Frequency::kMonthly, false},
  };
  for (const std::string scope : {"", "P1:", "P2:"}) {
    auto unscoped = [&scope](const std::string& id) {
      return !scope.empty() && id.starts_with(scope) ? id.substr(scope.size()) : id;
    };
    nlohmann::ordered_json expected;
    expected["id"] = "o-1";
    expected["customer_id"] = unscoped("P1:C1");
    expected["creation_date"] = "2020-02-29";
    expected["line_items"] = nlohmann::ordered_json::array();
    for (const OrderLine& l : lines) {
      nlohmann::ordered_json item;
      item["subscription_id"] = unscoped(l.subscription_id);
      item["offer_id"] = unscoped(l.offer_id);
      item["seats"] = l.seats;
      item["billing_frequency"] = l.frequency ? nlohmann::ordered_json(to_string(*l.frequency))
                                              : nlohmann::ordered_json(nullptr);
      if (!l.parent_subscription_id.empty())
        item["parent_subscription_id"] = unscoped(l.parent_subscription_id);
      item["trial"] = l.trial;
      expected["line_items"].push_back(item);
    }
    expected["status"] = "completed";
    EXPECT_EQ(order_json("o-1", "P1:C1", *Date::parse("2020-02-29"), lines, scope), expected.dump())
        << scope;
  }
  EXPECT_EQ(order_json("o", "C", *Date::parse("2020-01-01"), {}),
            R"({"id":"o","customer_id":"C","creation_date":"2020-01-01","line_items":[],"status":"completed"})");
}

}  // namespace
}  // namespace subledger
