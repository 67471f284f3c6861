// Fold: an in-memory decider harness for tests. Given events, when a command, then events or a
// rejection; no database. It stamps envelopes the way the ledger does.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "ledger/command.h"
#include "ledger/decide.h"
#include "ledger/stamp.h"
#include "projections/ledger_state.h"

namespace subledger::testing {

inline Date D(const char* iso) { return *Date::parse(iso); }

class Fold {
 public:
  LedgerState state{true};

  void given(const EventPayload& payload, Date date = Date()) {
    Event e = stamp_event(state, payload, date, "test", "given-" + std::to_string(state.last_seq() + 1),
                          0)
                  .event;
    ASSERT_EQ(state.apply(e), absl::OkStatus());
  }

  Decision when(const std::string& json) {
    ParsedCommand parsed = parse_command(json);
    if (!parsed.command) return Decision{{}, parsed.rejection};
    return decide(*parsed.command, state);
  }

  // Decides and applies; fails the test on a rejection.
  Decision accept(const std::string& json) {
    Decision d = when(json);
    EXPECT_FALSE(d.rejection) << json << " -> " << d.rejection->code << ": "
                              << d.rejection->message;
    for (const auto& s : d.events) given(s.payload, s.date);
    return d;
  }

  std::string code(const std::string& json) {
    Decision d = when(json);
    return d.rejection ? d.rejection->code : "ACCEPTED";
  }

  std::optional<Invoice> invoice(const std::string& customer, Date d) {
    state.advance_customer(customer, d);
    return state.build_invoice(customer, d);
  }

  // The catalog of BILLING_RULES 11: partner P1 (US, USD, day 20), offers E3 and BP, customer C1.
  void standard_catalog() {
    given(PartnerRegistered{"P1", "US", "USD", 20});
    given(OfferDefined{"E3", "Office 365 E3", Segment::kCommercial, true, {}, 0, 0});
    given(PricePublished{"E3", "USD", 20'000'000, D("2016-01-01")}, D("2016-01-01"));
    given(OfferDefined{"BP", "Business Premium", Segment::kCommercial, true, {}, 300, 0});
    given(PricePublished{"BP", "USD", 10'000'000, D("2016-01-01")}, D("2016-01-01"));
    given(CustomerCreated{"C1", "P1", "US", "USD", "Contoso", "", "", ""});
  }
};

// Amounts of the lines in invoice order, as strings with the currency's digits.
inline std::vector<std::string> amounts(const Invoice& inv) {
  std::vector<std::string> out;
  for (const auto& l : inv.lines) out.push_back(format_minor(l.amount_minor, inv.currency_digits));
  return out;
}

}  // namespace subledger::testing
