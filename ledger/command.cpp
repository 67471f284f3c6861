#include "ledger/command.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

#include "events/money.h"
#include "projections/invoice.h"

namespace subledger {

using nlohmann::json;

namespace {

enum class Kind { kString, kInt, kBool, kDate, kPrice, kFrequency, kSegment, kStringList };

struct FieldSpec {
  const char* name;
  Kind kind;
  bool required;
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
        {"middle_name", Kind::kString, false}}},
      {"define_offer",
       CommandType::kDefineOffer,
       {{"offer_id", Kind::kString, true},
        {"name", Kind::kString, true},
        {"segment", Kind::kSegment, false},
        {"trial_eligible", Kind::kBool, false},
        {"addon_of", Kind::kStringList, false},
        {"max_seats", Kind::kInt, false},
        {"max_per_customer", Kind::kInt, false}}},
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
  };
  return c.*fields.at(name);
}

template <class C>
auto& int_field(C& c, std::string_view name) {
  if (name == "billing_day") return c.billing_day;
  if (name == "seats") return c.seats;
  if (name == "max_seats") return c.max_seats;
  return c.max_per_customer;
}

// Reads one field into the command; returns an error message or "".
std::string read_field(Command& c, const FieldSpec& f, const json& v) {
  std::string name = f.name;
  switch (f.kind) {
    case Kind::kString:
      if (!v.is_string()) return name + " must be a string";
      string_field(c, name) = v.get<std::string>();
      return "";
    case Kind::kInt:
      if (!v.is_number_integer()) return name + " must be a whole number";
      int_field(c, name) = v.get<int64_t>();
      return "";
    case Kind::kBool:
      if (!v.is_boolean()) return name + " must be true or false";
      (name == "enabled" ? c.enabled : c.trial_eligible) = v.get<bool>();
      return "";
    case Kind::kDate: {
      auto d = v.is_string() ? Date::parse(v.get<std::string>()) : std::nullopt;
      if (!d) return name + " must be a calendar date \"YYYY-MM-DD\"";
      c.date = *d;
      return "";
    }
    case Kind::kPrice: {
      auto p = v.is_string() ? parse_price_micros(v.get<std::string>()) : std::nullopt;
      if (!p)
        return name + " must be a decimal string with at most 6 fraction digits, like \"20.00\"";
      c.monthly_price_micros = *p;
      return "";
    }
    case Kind::kFrequency:
      if (v == "monthly")
        c.frequency = Frequency::kMonthly;
      else if (v == "annual")
        c.frequency = Frequency::kAnnual;
      else
        return name + " must be \"monthly\" or \"annual\"";
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
        return name + " must be one of commercial, education, government, nonprofit";
      return "";
    case Kind::kStringList:
      if (!v.is_array()) return name + " must be a list of offer ids";
      c.addon_of.clear();
      for (const auto& item : v) {
        if (!item.is_string()) return name + " must be a list of offer ids";
        c.addon_of.push_back(item.get<std::string>());
      }
      return "";
  }
  return "";
}

Rejection invalid(std::string message) { return Rejection{"INVALID_ARGUMENT", std::move(message)}; }

}  // namespace

std::string_view to_string(CommandType type) { return spec_of(type).name; }

bool Command::is_subscription_command() const {
  return type != CommandType::kRegisterPartner && type != CommandType::kCreateCustomer &&
         type != CommandType::kDefineOffer && type != CommandType::kPublishPrice &&
         type != CommandType::kRunBilling;
}

ParsedCommand parse_command(std::string_view line) {
  ParsedCommand out;
  json doc = json::parse(line.begin(), line.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    out.rejection = invalid("not a JSON object: each input line must be one command object");
    return out;
  }
  if (auto it = doc.find("request_id"); it != doc.end() && it->is_string())
    out.request_id = it->get<std::string>();
  auto cmd = doc.find("cmd");
  if (cmd == doc.end() || !cmd->is_string()) {
    out.rejection = invalid("missing \"cmd\"; accepted: " + command_names());
    return out;
  }
  const CommandSpec* spec = nullptr;
  for (const auto& s : command_specs())
    if (*cmd == s.name) spec = &s;
  if (!spec) {
    out.rejection = invalid("unknown cmd " + cmd->dump() + "; accepted: " + command_names());
    return out;
  }
  if (out.request_id.empty()) {
    out.rejection = invalid("request_id must be a non-empty string");
    return out;
  }
  Command c;
  c.type = spec->type;
  c.request_id = out.request_id;
  for (const auto& [key, value] : doc.items()) {
    if (key == "cmd" || key == "request_id") continue;
    if (key == "actor") {
      if (!value.is_string() || value.get<std::string>().empty()) {
        out.rejection = invalid("actor must be a non-empty string");
        return out;
      }
      c.actor = value.get<std::string>();
      continue;
    }
    auto f = std::find_if(spec->fields.begin(), spec->fields.end(),
                          [&](const FieldSpec& s) { return key == s.name; });
    if (f == spec->fields.end()) {
      out.rejection = invalid("unknown field \"" + key + "\" for " + spec->name +
                              "; accepted: " + field_names(*spec));
      return out;
    }
    if (std::string error = read_field(c, *f, value); !error.empty()) {
      out.rejection = invalid(error);
      return out;
    }
  }
  for (const auto& f : spec->fields) {
    if (f.required && !doc.contains(f.name)) {
      out.rejection = invalid(std::string(spec->name) + " needs \"" + f.name +
                              "\"; its fields are: " + field_names(*spec));
      return out;
    }
  }
  out.command = std::move(c);
  return out;
}

std::string canonical_payload(const Command& c) {
  // Every field of the type, in spec order, defaults included: equal commands, equal bytes.
  const CommandSpec& spec = spec_of(c.type);
  json doc = json::object();
  doc["cmd"] = spec.name;
  doc["actor"] = c.actor;
  for (const auto& f : spec.fields) {
    std::string name = f.name;
    switch (f.kind) {
      case Kind::kString:
        doc[name] = string_field(c, name);
        break;
      case Kind::kInt:
        doc[name] = int_field(c, name);
        break;
      case Kind::kBool:
        doc[name] = name == "enabled" ? c.enabled : c.trial_eligible;
        break;
      case Kind::kDate:
        doc[name] = c.date.iso();
        break;
      case Kind::kPrice:
        doc[name] = c.monthly_price_micros;
        break;
      case Kind::kFrequency:
        doc[name] = c.frequency ? std::string(to_string(*c.frequency)) : std::string();
        break;
      case Kind::kSegment:
        doc[name] = std::string(to_string(c.segment));
        break;
      case Kind::kStringList:
        doc[name] = c.addon_of;
        break;
    }
  }
  return doc.dump();
}

std::string payload_hash(const Command& c) { return sha256(canonical_payload(c)); }

}  // namespace subledger
