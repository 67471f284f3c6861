#include "ledger/command.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>

#include "events/money.h"
#include "ledger/strict_json.h"
#include "projections/invoice.h"
#include "projections/views.h"

namespace subledger {

using nlohmann::json;

namespace {

constexpr size_t kListEntriesMax = 64;     // offers, markets or kinds a list may name
constexpr size_t kFreeTextBytesMax = 256;  // name, company_name, phone, middle_name

bool is_id_char(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
         ch == '.' || ch == '_' || ch == '~' || ch == '-';
}

bool is_plain_id(std::string_view id) {
  if (id.empty() || id.size() > kIdCharsMax) return false;
  const char first = id.front();
  const bool alnum_first = (first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z') ||
                           (first >= '0' && first <= '9');
  return alnum_first && std::all_of(id.begin(), id.end(), is_id_char);
}

bool is_id_field(std::string_view name) {
  return name.ends_with("_id") || name == "request_id" || name == "actor";
}

// Free text is stored and printed, never interpreted: bounded, without control characters.
std::string free_text_error(const std::string& name, const std::string& text) {
  if (text.size() > kFreeTextBytesMax)
    return name + " has " + std::to_string(text.size()) + " bytes; at most " +
           std::to_string(kFreeTextBytesMax);
  for (unsigned char ch : text)
    if (ch < 0x20 || ch == 0x7f) return name + " must not contain control characters";
  // C1 controls, zero-width and direction marks, line separators, direction overrides, BOM:
  // invisible characters that make a printed name say something else.
  static constexpr std::string_view kInvisible[] = {
      "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2028", "\u2029", "\u202a", "\u202b",
      "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\ufeff"};
  for (std::string_view mark : kInvisible)
    if (text.find(mark) != std::string::npos)
      return name + " must not contain invisible control or direction characters";
  for (size_t i = 0; i + 1 < text.size(); ++i)  // every other C1 control, U+0080..U+009F
    if (static_cast<unsigned char>(text[i]) == 0xc2 &&
        static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(text[i + 1]) <= 0x9f)
      return name + " must not contain control characters";
  return "";
}

// Codes are validated against their lists by decide (UNKNOWN_COUNTRY, UNKNOWN_CURRENCY); here only
// their shape, so a message never echoes a huge or binary value.
std::string code_error(const std::string& name, const std::string& text) {
  constexpr size_t kCodeCharsMax = 8;
  bool alnum = std::all_of(text.begin(), text.end(), [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
  });
  if (text.empty() || text.size() > kCodeCharsMax || !alnum)
    return name + " must be a short code of letters, like " +
           (name == "currency" ? std::string("\"USD\"") : std::string("\"US\""));
  return "";
}

std::string field_text_error(const std::string& name, const std::string& text) {
  if (is_id_field(name) || name == "agreement_type") return id_error(name, text);
  if (name == "country" || name == "currency") return code_error(name, text);
  return free_text_error(name, text);
}

enum class Kind {
  kString,
  kInt,
  kBool,
  kDate,
  kPrice,
  kFrequency,
  kSegment,
  kStringList,
  kContact
};

struct FieldSpec {
  const char* name;
  Kind kind;
  bool required;
  // A field added to a command after ledgers were written: its canonical form leaves it out when
  // it holds its default, so the requests those ledgers remember keep their payload hashes.
  bool added_later = false;
};

struct CommandSpec {
  const char* name;
  CommandType type;
  std::vector<FieldSpec> fields;
};

const std::vector<CommandSpec>& command_specs() {
  static const std::vector<CommandSpec> specs = {
      {"register_partner",
       CommandType::kRegisterPartner,
       {{"partner_id", Kind::kString, true},
        {"country", Kind::kString, true},
        {"currency", Kind::kString, true},
        {"billing_day", Kind::kInt, true}}},
      {"create_customer",
       CommandType::kCreateCustomer,
       {{"customer_id", Kind::kString, true},
        {"partner_id", Kind::kString, true},
        {"country", Kind::kString, true},
        {"currency", Kind::kString, true},
        {"company_name", Kind::kString, false},
        {"organization_registration_number", Kind::kString, false},
        {"phone", Kind::kString, false},
        {"middle_name", Kind::kString, false},
        {"segment", Kind::kSegment, false, true}}},
      {"update_customer",
       CommandType::kUpdateCustomer,
       {{"customer_id", Kind::kString, true},
        {"company_name", Kind::kString, false},
        {"organization_registration_number", Kind::kString, false},
        {"phone", Kind::kString, false},
        {"middle_name", Kind::kString, false},
        {"segment", Kind::kSegment, false}}},
      {"define_offer",
       CommandType::kDefineOffer,
       {{"offer_id", Kind::kString, true},
        {"name", Kind::kString, true},
        {"segment", Kind::kSegment, false},
        {"trial_eligible", Kind::kBool, false},
        {"addon_of", Kind::kStringList, false},
        {"max_seats", Kind::kInt, false},
        {"max_per_customer", Kind::kInt, false},
        {"markets", Kind::kStringList, false, true},
        {"term_months", Kind::kInt, false, true}}},
      {"retire_offer",
       CommandType::kRetireOffer,
       {{"offer_id", Kind::kString, true}, {"date", Kind::kDate, true}}},
      {"define_promotion",
       CommandType::kDefinePromotion,
       {{"promotion_id", Kind::kString, true},
        {"offer_ids", Kind::kStringList, true},
        {"percent_off", Kind::kInt, true},
        {"purchase_from", Kind::kDate, true},
        {"purchase_to", Kind::kDate, true},
        {"applies_to", Kind::kStringList, true},
        {"markets", Kind::kStringList, false},
        {"max_seats", Kind::kInt, false},
        {"new_customer_only", Kind::kBool, false},
        {"exclude_offers", Kind::kStringList, false},
        {"exclude_cancel_days", Kind::kInt, false}}},
      {"publish_price",
       CommandType::kPublishPrice,
       {{"offer_id", Kind::kString, true},
        {"currency", Kind::kString, true},
        {"monthly_price", Kind::kPrice, true},
        {"effective_from", Kind::kDate, true}}},
      {"create_subscription",
       CommandType::kCreateSubscription,
       {{"subscription_id", Kind::kString, true},
        {"customer_id", Kind::kString, true},
        {"offer_id", Kind::kString, true},
        {"seats", Kind::kInt, true},
        {"billing_frequency", Kind::kFrequency, false},
        {"date", Kind::kDate, true},
        {"parent_subscription_id", Kind::kString, false}}},
      {"start_trial",
       CommandType::kStartTrial,
       {{"subscription_id", Kind::kString, true},
        {"customer_id", Kind::kString, true},
        {"offer_id", Kind::kString, true},
        {"date", Kind::kDate, true}}},
      {"convert_trial",
       CommandType::kConvertTrial,
       {{"subscription_id", Kind::kString, true},
        {"billing_frequency", Kind::kFrequency, true},
        {"date", Kind::kDate, true}}},
      {"change_seats",
       CommandType::kChangeSeats,
       {{"subscription_id", Kind::kString, true},
        {"seats", Kind::kInt, true},
        {"date", Kind::kDate, true}}},
      {"cancel",
       CommandType::kCancel,
       {{"subscription_id", Kind::kString, true}, {"date", Kind::kDate, true}}},
      {"reactivate",
       CommandType::kReactivate,
       {{"subscription_id", Kind::kString, true}, {"date", Kind::kDate, true}}},
      {"renew",
       CommandType::kRenew,
       {{"subscription_id", Kind::kString, true}, {"date", Kind::kDate, true}}},
      {"set_auto_renew",
       CommandType::kSetAutoRenew,
       {{"subscription_id", Kind::kString, true},
        {"enabled", Kind::kBool, true},
        {"date", Kind::kDate, true}}},
      {"run_billing", CommandType::kRunBilling, {{"through", Kind::kDate, true}}},
      {"accept_agreement",
       CommandType::kAcceptAgreement,
       {{"customer_id", Kind::kString, true},
        {"agreement_type", Kind::kString, true},
        {"date_agreed", Kind::kDate, true},
        {"contact", Kind::kContact, true}}},
  };
  return specs;
}

const CommandSpec& spec_of(CommandType type) {
  for (const auto& s : command_specs())
    if (s.type == type) return s;
  throw std::logic_error("command without a spec");
}

std::string command_names() {
  std::string out;
  for (const auto& s : command_specs()) out += (out.empty() ? "" : ", ") + std::string(s.name);
  return out;
}

std::string field_names(const CommandSpec& spec) {
  std::string out = "cmd, request_id, actor";
  for (const auto& f : spec.fields) out += ", " + std::string(f.name);
  return out;
}

// Works for a const or a mutable command alike.
template <class C>
auto& string_field(C& c, std::string_view name) {
  static const std::map<std::string_view, std::string Command::*> fields = {
      {"partner_id", &Command::partner_id},
      {"promotion_id", &Command::promotion_id},
      {"customer_id", &Command::customer_id},
      {"offer_id", &Command::offer_id},
      {"subscription_id", &Command::subscription_id},
      {"parent_subscription_id", &Command::parent_subscription_id},
      {"country", &Command::country},
      {"currency", &Command::currency},
      {"name", &Command::name},
      {"company_name", &Command::company_name},
      {"organization_registration_number", &Command::organization_registration_number},
      {"phone", &Command::phone},
      {"middle_name", &Command::middle_name},
      {"agreement_type", &Command::agreement_type},
      {"first_name", &Command::contact_first_name},
      {"last_name", &Command::contact_last_name},
      {"email", &Command::contact_email},
  };
  return c.*fields.at(name);
}

template <class C>
auto& int_field(C& c, std::string_view name) {
  if (name == "billing_day") return c.billing_day;
  if (name == "seats") return c.seats;
  if (name == "max_seats") return c.max_seats;
  if (name == "term_months") return c.term_months;
  if (name == "percent_off") return c.percent_off;
  if (name == "exclude_cancel_days") return c.exclude_cancel_days;
  return c.max_per_customer;
}

template <class C>
auto& bool_field(C& c, std::string_view name) {
  if (name == "enabled") return c.enabled;
  if (name == "new_customer_only") return c.new_customer_only;
  return c.trial_eligible;
}

template <class C>
auto& list_field(C& c, std::string_view name) {
  if (name == "markets") return c.markets;
  if (name == "offer_ids") return c.offer_ids;
  if (name == "exclude_offers") return c.exclude_offers;
  if (name == "applies_to") return c.applies_to;
  return c.addon_of;
}

template <class C>
auto& date_field(C& c, std::string_view name) {
  return name == "purchase_to" ? c.purchase_to : c.date;
}

// The JSON value as the user wrote it, cut short for a message.
std::string shown(const json& v) {
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  constexpr size_t kShownMax = 48;
  if (text.size() > kShownMax) text = text.substr(0, kShownMax) + "...";
  return text;
}

// The range each integer field is read into (INTERFACE.md: outside it, INVALID_ARGUMENT). Seats and
// caps fit the 32-bit counts the events store and the signed arithmetic of the line formula; rules
// narrower than these (seats >= 1, billing_day 1..28) are decided with their own codes.
struct IntRange {
  int64_t min, max;
};
constexpr int kPercentMax = 100;
IntRange int_range(std::string_view name) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  if (name == "seats") return {std::numeric_limits<int32_t>::min(), kInt32Max};
  if (name == "billing_day") return {std::numeric_limits<int32_t>::min(), kInt32Max};
  if (name == "term_months") return {std::numeric_limits<int32_t>::min(), kInt32Max};
  if (name == "percent_off") return {1, kPercentMax};                    // BILLING_RULES 12
  if (name == "exclude_cancel_days") return {0, kExcludeCancelDaysMax};  // BILLING_RULES 12
  return {0, kInt32Max};  // max_seats, max_per_customer: 0 means no cap
}

std::string int_range_text(std::string_view name) {
  if (name == "seats") return "a whole number of seats from 1 to 2147483647";
  if (name == "billing_day") return "a day of month from 1 to 28";
  if (name == "term_months") return "12 or 36";
  if (name == "percent_off") return "a whole percentage from 1 to 100";
  if (name == "exclude_cancel_days")
    return "a whole number of days from 0 to " + std::to_string(kExcludeCancelDaysMax);
  return "a whole number from 0 (no cap) to 2147483647";
}

// What each list holds, for its entries' checks and messages.
std::string list_entry_error(const std::string& name, const std::string& entry) {
  if (name == "markets") return code_error(name + " entry", entry);
  if (name == "applies_to")
    return entry == "new" || entry == "renewal"
               ? ""
               : name + " entries must be \"new\" or \"renewal\"; got " + shown(json(entry));
  return id_error(name + " entry", entry);
}

// Reads one field into the command; returns an error message or "".
std::string read_field(Command& c, const FieldSpec& f, const json& v) {
  std::string name = f.name;
  switch (f.kind) {
    case Kind::kString: {
      if (!v.is_string()) return name + " must be a string; got " + shown(v);
      const std::string& text = v.get_ref<const std::string&>();
      if (std::string why = field_text_error(name, text); !why.empty()) return why;
      string_field(c, name) = text;
      return "";
    }
    case Kind::kInt: {
      const IntRange range = int_range(name);
      bool in_range = false;
      if (v.is_number_unsigned())
        in_range = v.get<uint64_t>() <= static_cast<uint64_t>(range.max) &&
                   v.get<int64_t>() >= range.min;  // percent_off starts at 1
      else if (v.is_number_integer())
        in_range = v.get<int64_t>() >= range.min && v.get<int64_t>() <= range.max;
      else if (v.is_number_float() && std::fabs(v.get<double>()) >= 0x1p63)
        // A whole number past 64 bits reaches us as a double: out of range, not "not whole".
        return name + " is out of range: a number beyond 64-bit integers; give " +
               int_range_text(name);
      else
        return name + " must be " + int_range_text(name) + "; got " + shown(v);
      if (!in_range)
        return name + " is out of range: " + shown(v) + "; give " + int_range_text(name);
      int_field(c, name) = v.get<int64_t>();
      return "";
    }
    case Kind::kBool:
      if (!v.is_boolean()) return name + " must be true or false";
      bool_field(c, name) = v.get<bool>();
      return "";
    case Kind::kDate: {
      auto d = v.is_string() ? Date::parse(v.get<std::string>()) : std::nullopt;
      if (!d)
        return name + " must be a calendar date \"YYYY-MM-DD\" in the years 1900 to 9999; got " +
               shown(v);
      date_field(c, name) = *d;
      return "";
    }
    case Kind::kPrice: {
      if (!v.is_string())
        return name + " must be a decimal string like \"20.00\", not a JSON number; got " +
               shown(v);
      auto p = parse_price_micros(v.get_ref<const std::string&>());
      if (!p.ok()) return name + " " + std::string(p.status().message()) + "; got " + shown(v);
      c.monthly_price_micros = *p;
      return "";
    }
    case Kind::kFrequency:
      if (v == "monthly")
        c.frequency = Frequency::kMonthly;
      else if (v == "annual")
        c.frequency = Frequency::kAnnual;
      else
        return name + " must be \"monthly\" or \"annual\"; got " + shown(v);
      return "";
    case Kind::kSegment:
      if (v == "commercial")
        c.segment = Segment::kCommercial;
      else if (v == "education")
        c.segment = Segment::kEducation;
      else if (v == "government")
        c.segment = Segment::kGovernment;
      else if (v == "nonprofit")
        c.segment = Segment::kNonprofit;
      else
        return name + " must be one of commercial, education, government, nonprofit; got " +
               shown(v);
      return "";
    case Kind::kStringList: {
      auto& list = list_field(c, name);
      if (!v.is_array() || v.size() > kListEntriesMax)
        return name + " must be a list of at most " + std::to_string(kListEntriesMax) + " strings";
      list.clear();
      for (const auto& item : v) {
        if (!item.is_string()) return name + " must be a list of strings; got " + shown(item);
        const std::string& entry = item.get_ref<const std::string&>();
        if (std::string why = list_entry_error(name, entry); !why.empty()) return why;
        list.push_back(entry);
      }
      return "";
    }
    case Kind::kContact: {
      // The person who accepted: first_name, last_name, email, all required, nothing else.
      const std::string shape =
          name + " must be an object {\"first_name\", \"last_name\", \"email\"} of strings";
      if (!v.is_object()) return shape + "; got " + shown(v);
      for (const auto& [key, value] : v.items())
        if (key != "first_name" && key != "last_name" && key != "email")
          return "unknown field " + shown(json(key)) + " in " + name + "; " + shape;
      for (const char* part : {"first_name", "last_name", "email"}) {
        auto it = v.find(part);
        if (it == v.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
          return name + "." + part + " is required: a non-empty string";
        const std::string& text = it->get_ref<const std::string&>();
        if (std::string why = free_text_error(name + "." + part, text); !why.empty()) return why;
        string_field(c, part) = text;
      }
      const std::string& email = c.contact_email;
      size_t at = email.find('@');
      if (at == std::string::npos || at == 0 || at + 1 == email.size() ||
          email.find('@', at + 1) != std::string::npos || email.find(' ') != std::string::npos)
        return name + ".email must be an address like \"ana@example.com\"; got " +
               shown(json(email));
      return "";
    }
  }
  return "";
}

// A message, prefixed with the input line it is about when that is known (1-based, 0 = unknown).
std::string at_line(uint64_t line_number, std::string message) {
  return line_number == 0 ? std::move(message)
                          : "line " + std::to_string(line_number) + ": " + message;
}

Rejection invalid(std::string message) {
  return rejection(RejectionCode::kInvalidArgument, std::move(message));
}

}  // namespace

std::string id_grammar_text() {
  return "1 to 128 characters of A-Z a-z 0-9 . _ ~ -, beginning with a letter or digit "
         "(optionally after a partner scope \"PARTNER:\")";
}

std::string id_error(std::string_view field, std::string_view id) {
  // INTERFACE.md: an id, or "<partner_id>:<id>" (SERVER.md's partner scope), nothing else.
  size_t colon = id.find(':');
  bool ok = colon == std::string_view::npos
                ? is_plain_id(id)
                : is_plain_id(id.substr(0, colon)) && is_plain_id(id.substr(colon + 1));
  if (ok) return "";
  std::string shown_id =
      json(std::string(id.substr(0, 48))).dump(-1, ' ', false, json::error_handler_t::replace);
  if (id.size() > 48) shown_id += "...";
  return std::string(field) + " " + shown_id + " is not an id (" + std::to_string(id.size()) +
         " bytes): ids are " + id_grammar_text();
}

std::string actor_error(std::string_view actor) {
  std::string lower(actor.substr(0, kKeyActorPrefix.size() + kSystemActor.size()));
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  // Reserved whatever the case: "SYSTEM" must not read as the ledger's own actor either.
  if (lower == kSystemActor || lower.starts_with(kKeyActorPrefix))
    return "actor \"" + std::string(actor) + "\" is reserved: \"" + std::string(kSystemActor) +
           "\" and names beginning \"" + std::string(kKeyActorPrefix) +
           "\" are the ledger's and the server's own; omit actor or name yourself";
  return id_error("actor", actor);
}

std::string_view to_string(CommandType type) { return spec_of(type).name; }

bool Command::is_subscription_command() const {
  return type != CommandType::kRegisterPartner && type != CommandType::kCreateCustomer &&
         type != CommandType::kDefineOffer && type != CommandType::kPublishPrice &&
         type != CommandType::kRunBilling && type != CommandType::kAcceptAgreement &&
         type != CommandType::kUpdateCustomer && type != CommandType::kRetireOffer &&
         type != CommandType::kDefinePromotion;
}

bool Command::given(std::string_view field) const {
  const auto& fields = spec_of(type).fields;
  for (size_t i = 0; i < fields.size(); ++i)
    if (fields[i].name == field) return (given_fields >> i) & 1u;
  return false;
}

bool is_blank_line(std::string_view line) {
  if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // a byte-order mark, as the parser
  return std::all_of(line.begin(), line.end(),
                     [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; });
}

ParsedCommand parse_command(std::string_view line, uint64_t line_number) {
  ParsedCommand out;
  auto where = [line_number](std::string message) {
    return at_line(line_number, std::move(message));
  };
  if (line.size() > kCommandBytesMax) {
    out.rejection = invalid(where("the line has " + std::to_string(line.size()) +
                                  " bytes; a command is at most " +
                                  std::to_string(kCommandBytesMax) + " bytes"));
    return out;
  }
  std::string syntax;
  std::optional<json> parsed = parse_json_strictly<json>(line, syntax);
  if (!parsed) {
    out.rejection = invalid(where(syntax));
    return out;
  }
  return parse_command_object(*parsed, line_number);
}

ParsedCommand parse_command_object(const nlohmann::json& doc, uint64_t line_number) {
  ParsedCommand out;
  auto where = [line_number](std::string message) {
    return at_line(line_number, std::move(message));
  };
  if (!doc.is_object()) {
    out.rejection = invalid(where("not a JSON object: each input line must be one command object"));
    return out;
  }
  // The request id is echoed on the result line only when it is a well-formed id.
  if (auto it = doc.find("request_id");
      it != doc.end() && it->is_string() &&
      id_error("request_id", it->get_ref<const std::string&>()).empty())
    out.request_id = it->get<std::string>();
  auto cmd = doc.find("cmd");
  if (cmd == doc.end() || !cmd->is_string()) {
    out.rejection = invalid(where("missing \"cmd\"; accepted: " + command_names()));
    return out;
  }
  const CommandSpec* spec = nullptr;
  for (const auto& s : command_specs())
    if (*cmd == s.name) spec = &s;
  if (!spec) {
    out.rejection = invalid(where("unknown cmd " + shown(*cmd) + "; accepted: " + command_names()));
    return out;
  }
  auto request_id = doc.find("request_id");
  if (request_id == doc.end() || !request_id->is_string()) {
    out.rejection = invalid(where("request_id must be a string: " + id_grammar_text()));
    return out;
  }
  if (std::string why = id_error("request_id", request_id->get_ref<const std::string&>());
      !why.empty()) {
    out.rejection = invalid(where(why));
    return out;
  }
  Command c;
  c.type = spec->type;
  c.request_id = out.request_id;
  for (const auto& [key, value] : doc.items()) {
    if (key == "cmd" || key == "request_id") continue;
    if (key == "actor") {
      if (!value.is_string()) {
        out.rejection = invalid(where("actor must be a string: " + id_grammar_text()));
        return out;
      }
      const std::string& actor = value.get_ref<const std::string&>();
      if (std::string why = actor_error(actor); !why.empty()) {
        out.rejection = invalid(where(why));
        return out;
      }
      c.actor = actor;
      continue;
    }
    auto f = std::find_if(spec->fields.begin(), spec->fields.end(),
                          [&k = key](const FieldSpec& s) { return k == s.name; });
    if (f == spec->fields.end()) {
      out.rejection = invalid(where("unknown field " + shown(json(key)) + " for " + spec->name +
                                    "; accepted: " + field_names(*spec)));
      return out;
    }
    // BILLING_RULES 15: in an update, null counts as absent.
    if (spec->type == CommandType::kUpdateCustomer && value.is_null()) continue;
    if (std::string error = read_field(c, *f, value); !error.empty()) {
      out.rejection = invalid(where(error));
      return out;
    }
    c.given_fields |= 1u << (f - spec->fields.begin());
  }
  if (spec->type == CommandType::kUpdateCustomer && c.given_fields == 1u) {  // customer_id only
    out.rejection = invalid(where(
        "update_customer needs at least one of company_name, organization_registration_number, "
        "phone, middle_name, segment (null counts as absent)"));
    return out;
  }
  for (const auto& f : spec->fields) {
    if (f.required && !doc.contains(f.name)) {
      out.rejection = invalid(where(std::string(spec->name) + " needs \"" + f.name +
                                    "\"; its fields are: " + field_names(*spec)));
      return out;
    }
  }
  out.command = std::move(c);
  return out;
}

namespace {
// Whether a field added later holds the value its omission means.
bool is_default(const Command& c, const FieldSpec& f) {
  const Command defaults;
  switch (f.kind) {
    case Kind::kSegment:
      return c.segment == defaults.segment;
    case Kind::kStringList:
      return list_field(c, f.name).empty();
    case Kind::kInt:
      return int_field(c, f.name) == int_field(defaults, f.name);
    default:
      return false;
  }
}
}  // namespace

namespace {

// The members of each command's canonical form in the order it prints them, which is the order
// of a std::map of names (the form was first printed from a `json` object): kActorMember,
// kCmdMember or a field's index in its spec.
constexpr int kActorMember = -2, kCmdMember = -1;
const std::vector<int>& canonical_order(const CommandSpec& spec) {
  static const std::map<CommandType, std::vector<int>> orders = [] {
    std::map<CommandType, std::vector<int>> out;
    for (const CommandSpec& s : command_specs()) {
      std::map<std::string_view, int> by_name{{"actor", kActorMember}, {"cmd", kCmdMember}};
      for (size_t i = 0; i < s.fields.size(); ++i)
        by_name.emplace(s.fields[i].name, static_cast<int>(i));
      for (const auto& [name, member] : by_name) out[s.type].push_back(member);
    }
    return out;
  }();
  return orders.at(spec.type);
}

}  // namespace

std::string canonical_payload(const Command& c) {
  // Every field of the type, defaults included, members in name order: equal commands, equal
  // bytes. The text is that of nlohmann::json's dump() of the same object, so the hashes ledgers
  // already remember still match (tests/ledger/command_test.cpp keeps that printer as the oracle).
  const CommandSpec& spec = spec_of(c.type);
  std::string out = "{";
  auto member = [&out](std::string_view name) {
    if (out.size() > 1) out.push_back(',');
    append_dumped_string(out, name);
    out.push_back(':');
  };
  for (int m : canonical_order(spec)) {
    if (m == kActorMember) {
      member("actor");
      append_dumped_string(out, c.actor);
      continue;
    }
    if (m == kCmdMember) {
      member("cmd");
      append_dumped_string(out, spec.name);
      continue;
    }
    const FieldSpec& f = spec.fields[static_cast<size_t>(m)];
    const bool given = (c.given_fields >> m) & 1u;
    // An update distinguishes a field left out (null) from every value, the empty string too.
    if (c.type == CommandType::kUpdateCustomer && !given && !f.required) {
      member(f.name);
      out += "null";
      continue;
    }
    if (f.added_later && is_default(c, f)) continue;
    member(f.name);
    switch (f.kind) {
      case Kind::kString:
        append_dumped_string(out, string_field(c, f.name));
        break;
      case Kind::kInt:
        out += std::to_string(int_field(c, f.name));
        break;
      case Kind::kBool:
        out += bool_field(c, f.name) ? "true" : "false";
        break;
      case Kind::kDate:
        append_dumped_string(out, date_field(c, f.name).iso());
        break;
      case Kind::kPrice:
        out += std::to_string(c.monthly_price_micros);
        break;
      case Kind::kFrequency:
        append_dumped_string(out, c.frequency ? to_string(*c.frequency) : std::string_view());
        break;
      case Kind::kSegment:
        append_dumped_string(out, to_string(c.segment));
        break;
      case Kind::kStringList: {
        out.push_back('[');
        const auto& list = list_field(c, f.name);
        for (size_t i = 0; i < list.size(); ++i) {
          if (i > 0) out.push_back(',');
          append_dumped_string(out, list[i]);
        }
        out.push_back(']');
        break;
      }
      case Kind::kContact:
        out += "{\"email\":";
        append_dumped_string(out, c.contact_email);
        out += ",\"first_name\":";
        append_dumped_string(out, c.contact_first_name);
        out += ",\"last_name\":";
        append_dumped_string(out, c.contact_last_name);
        out.push_back('}');
        break;
    }
  }
  out.push_back('}');
  return out;
}

std::string payload_hash(const Command& c) { return sha256(canonical_payload(c)); }

}  // namespace subledger
