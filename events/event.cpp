#include "events/event.h"

#include <utility>

namespace subledger {

namespace {
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Spelled out for clang 14, which does not deduce an aggregate's template arguments (P1816).
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;
}  // namespace

std::string_view to_string(StreamKind kind) {
  switch (kind) {
    case StreamKind::kSubscription:
      return "subscription";
    case StreamKind::kCustomer:
      return "customer";
    case StreamKind::kPartner:
      return "partner";
    case StreamKind::kOffer:
      return "offer";
    case StreamKind::kLedger:
      return "ledger";
    case StreamKind::kPromotion:
      return "promotion";
  }
  return "?";
}

std::string_view to_string(Frequency frequency) {
  return frequency == Frequency::kAnnual ? "annual" : "monthly";
}

std::string_view to_string(Segment segment) {
  switch (segment) {
    case Segment::kCommercial:
      return "commercial";
    case Segment::kEducation:
      return "education";
    case Segment::kGovernment:
      return "government";
    case Segment::kNonprofit:
      return "nonprofit";
  }
  return "?";
}

namespace {
template <size_t... I>
std::vector<std::string> names_of(std::index_sequence<I...>) {
  return {std::string(event_type_name(EventPayload(std::in_place_index<I>)))...};
}
}  // namespace

std::vector<std::string> event_type_names() {
  return names_of(std::make_index_sequence<std::variant_size_v<EventPayload>>());
}

std::string_view event_type_name(const EventPayload& payload) {
  return std::visit(
      Overloaded{
          [](const PartnerRegistered&) { return std::string_view("PartnerRegistered"); },
          [](const CustomerCreated&) { return std::string_view("CustomerCreated"); },
          [](const OfferDefined&) { return std::string_view("OfferDefined"); },
          [](const PricePublished&) { return std::string_view("PricePublished"); },
          [](const SubscriptionCreated&) { return std::string_view("SubscriptionCreated"); },
          [](const TrialStarted&) { return std::string_view("TrialStarted"); },
          [](const TrialConverted&) { return std::string_view("TrialConverted"); },
          [](const TrialExpired&) { return std::string_view("TrialExpired"); },
          [](const SeatsChanged&) { return std::string_view("SeatsChanged"); },
          [](const SubscriptionCancelled&) { return std::string_view("SubscriptionCancelled"); },
          [](const SubscriptionReactivated&) {
            return std::string_view("SubscriptionReactivated");
          },
          [](const AutoRenewSet&) { return std::string_view("AutoRenewSet"); },
          [](const SubscriptionRenewed&) { return std::string_view("SubscriptionRenewed"); },
          [](const SubscriptionExpired&) { return std::string_view("SubscriptionExpired"); },
          [](const BillingRun&) { return std::string_view("BillingRun"); },
          [](const InvoiceIssued&) { return std::string_view("InvoiceIssued"); },
          [](const AgreementAccepted&) { return std::string_view("AgreementAccepted"); },
          [](const PromotionDefined&) { return std::string_view("PromotionDefined"); },
          [](const OfferRetired&) { return std::string_view("OfferRetired"); },
          [](const CustomerUpdated&) { return std::string_view("CustomerUpdated"); },
      },
      payload);
}

Stream stream_of(const EventPayload& payload) {
  return std::visit(Overloaded{
                        [](const PartnerRegistered& e) {
                          return Stream{StreamKind::kPartner, e.partner_id};
                        },
                        [](const CustomerCreated& e) {
                          return Stream{StreamKind::kCustomer, e.customer_id};
                        },
                        [](const OfferDefined& e) {
                          return Stream{StreamKind::kOffer, e.offer_id};
                        },
                        [](const PricePublished& e) {
                          return Stream{StreamKind::kOffer, e.offer_id};
                        },
                        [](const InvoiceIssued& e) {
                          return Stream{StreamKind::kCustomer, e.customer_id};
                        },
                        [](const AgreementAccepted& e) {
                          return Stream{StreamKind::kCustomer, e.customer_id};
                        },
                        [](const PromotionDefined& e) {
                          return Stream{StreamKind::kPromotion, e.promotion_id};
                        },
                        [](const OfferRetired& e) {
                          return Stream{StreamKind::kOffer, e.offer_id};
                        },
                        [](const CustomerUpdated& e) {
                          return Stream{StreamKind::kCustomer, e.customer_id};
                        },
                        [](const BillingRun&) {
                          return Stream{StreamKind::kLedger, "billing"};
                        },
                        [](const auto& e) {
                          return Stream{StreamKind::kSubscription, e.subscription_id};
                        },
                    },
                    payload);
}

const std::string* subscription_id_of(const EventPayload& p) {
  return std::visit(
      [](const auto& e) -> const std::string* {
        if constexpr (requires { e.subscription_id; }) {
          return &e.subscription_id;
        } else {
          return nullptr;
        }
      },
      p);
}

const std::string* opening_customer_of(const EventPayload& p) {
  if (const auto* e = std::get_if<SubscriptionCreated>(&p)) return &e->customer_id;
  if (const auto* e = std::get_if<TrialStarted>(&p)) return &e->customer_id;
  return nullptr;
}

const std::string* customer_named_by(const EventPayload& p) {
  if (const auto* e = std::get_if<CustomerCreated>(&p)) return &e->customer_id;
  if (const auto* e = std::get_if<CustomerUpdated>(&p)) return &e->customer_id;
  if (const auto* e = std::get_if<AgreementAccepted>(&p)) return &e->customer_id;
  if (const auto* e = std::get_if<InvoiceIssued>(&p)) return &e->customer_id;
  return nullptr;
}

}  // namespace subledger
