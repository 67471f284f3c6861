// Command: one parsed line of `apply` input (INTERFACE.md "Commands").
//
// Parsing is strict: unknown fields, wrong types and malformed dates or prices are rejected with
// INVALID_ARGUMENT and a message naming the field and what would be accepted. The canonical
// payload (every field of the command type, defaults filled in, fixed order) is what idempotency
// compares, so key order, white space and an optional field given with its default value do not
// make a request different (BILLING_RULES 10). Pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/date.h"
#include "events/event.h"
#include "ledger/rejection.h"

namespace subledger {

enum class CommandType : uint8_t {
  kRegisterPartner,
  kCreateCustomer,
  kDefineOffer,
  kPublishPrice,
  kCreateSubscription,
  kStartTrial,
  kConvertTrial,
  kChangeSeats,
  kCancel,
  kReactivate,
  kRenew,
  kSetAutoRenew,
  kRunBilling,
  kAcceptAgreement,
  kUpdateCustomer,   // BILLING_RULES 15
  kRetireOffer,      // BILLING_RULES 13
  kDefinePromotion,  // BILLING_RULES 12
};
std::string_view to_string(CommandType type);

struct Command {
  CommandType type = CommandType::kRegisterPartner;
  std::string request_id;
  std::string actor = "cli";
  std::string partner_id, customer_id, offer_id, subscription_id, parent_subscription_id,
      promotion_id;
  std::string country, currency, name, company_name, organization_registration_number, phone,
      middle_name;
  std::string agreement_type, contact_first_name, contact_last_name, contact_email;
  int64_t billing_day = 0, seats = 0, max_seats = 0, max_per_customer = 0;
  int64_t term_months = kDefaultTermMonths, percent_off = 0,
          exclude_cancel_days = kDefaultExcludeCancelDays;
  Segment segment = Segment::kCommercial;
  bool trial_eligible = false, enabled = true, new_customer_only = false;
  std::vector<std::string> addon_of, markets, offer_ids, exclude_offers, applies_to;
  int64_t monthly_price_micros = 0;
  std::optional<Frequency> frequency;
  // `date`, `effective_from` (price), `through` (billing run), `date_agreed`, `purchase_from`
  Date date;
  Date purchase_to;
  // Bit i: the command's i-th field (in its spec's order) was given (not absent, not null).
  uint32_t given_fields = 0;

  bool is_subscription_command() const;
  // Whether the field named `field` was given (update_customer: null counts as absent).
  bool given(std::string_view field) const;
};

struct Rejection {
  std::string code, message;  // code: code_name() of a RejectionCode
};
inline Rejection rejection(RejectionCode code, std::string message) {
  return Rejection{std::string(code_name(code)), std::move(message)};
}

struct ParsedCommand {
  std::optional<Command> command;
  Rejection rejection;     // when command is empty
  std::string request_id;  // as far as it could be read, for the result line
};

inline constexpr size_t kCommandBytesMax = 1 << 20;  // one input line (SERVER.md: bodies <= 1 MiB)
inline constexpr size_t kIdCharsMax = 128;
inline constexpr std::string_view kKeyActorPrefix = "key:";  // the server's actors (SERVER.md)

// Parses one input line strictly (INTERFACE.md "Commands"): one JSON object and nothing after it,
// no NUL byte, no duplicated key, every field of its type and range, ids of the id grammar, no
// reserved actor. `line_number` (1-based, 0 = unknown) prefixes messages so an error says where.
ParsedCommand parse_command(std::string_view json_line, uint64_t line_number = 0);
// The same checks for a document already read strictly (parse_json_strictly), whatever its size:
// every check of parse_command but the line's length.
ParsedCommand parse_command_object(const nlohmann::json& doc, uint64_t line_number = 0);
// Blank lines (only spaces, tabs, CR) carry no command: skipped everywhere, with no result.
bool is_blank_line(std::string_view line);

// The id grammar (INTERFACE.md): "" when `id` is an id, else a message naming `field`.
std::string id_error(std::string_view field, std::string_view id);
std::string id_grammar_text();
// An id that is not reserved for the ledger ("system") or the server ("key:..."); "" or why not.
std::string actor_error(std::string_view actor);

// The canonical form compared by idempotency, and its SHA-256 (32 raw bytes).
std::string canonical_payload(const Command& command);
std::string payload_hash(const Command& command);

}  // namespace subledger
