// Views: how projections and events are shown to users (JSON lines of INTERFACE.md).
// Pure formatting; safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "events/event.h"
#include "projections/catalog.h"
#include "projections/subscription.h"

namespace subledger {

// `state`: the subscription as a JSON object. `as_of` is printed when given; `scope` (a partner's
// "P:"), when given, is taken off the front of the subscription, customer and parent ids.
std::string subscription_json(const Subscription& sub, Date as_of = Date(),
                              std::string_view scope = {});
// `s` as a JSON string, byte for byte as nlohmann::json's dump() prints it (throws its type_error
// for bytes that are not UTF-8): for texts that must not change, printed without a JSON object.
void append_dumped_string(std::string& out, std::string_view s);
// `history` / `log`: one event with its full envelope (actor, request id, dates).
std::string event_json(const Event& event);
// An event's data member alone (`offers`, `prices`).
std::string payload_json(const EventPayload& payload);
// A customer as created (the CustomerCreated fields).
std::string customer_json(const CustomerCreated& def);
// One accepted agreement; the contact (personal data) only when `with_contact`.
std::string agreement_json(const std::string& customer_id, const Agreement& agreement,
                           bool with_contact);

}  // namespace subledger
