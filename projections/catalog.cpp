#include "projections/catalog.h"

#include <algorithm>

namespace subledger {

const Partner* Catalog::partner(const std::string& id) const {
  auto it = partners_.find(id);
  return it == partners_.end() ? nullptr : &it->second;
}

const Customer* Catalog::customer(const std::string& id) const {
  auto it = customers_.find(id);
  return it == customers_.end() ? nullptr : &it->second;
}

Customer* Catalog::customer_mut(const std::string& id) {
  auto it = customers_.find(id);
  return it == customers_.end() ? nullptr : &it->second;
}

const OfferDefined* Catalog::offer(const std::string& id) const {
  auto it = offers_.find(id);
  return it == offers_.end() ? nullptr : &it->second;
}

std::optional<int64_t> Catalog::price_at(const std::string& offer_id, const std::string& currency,
                                         Date date) const {
  auto it = prices_.find({offer_id, currency});
  if (it == prices_.end()) return std::nullopt;
  auto after = it->second.upper_bound(date);
  if (after == it->second.begin()) return std::nullopt;
  return std::prev(after)->second;
}

const Promotion* Catalog::promotion(const std::string& id) const {
  auto it = promotions_.find(id);
  return it == promotions_.end() ? nullptr : &it->second;
}

Date Catalog::retired_on(const std::string& offer_id) const {
  auto it = retirements_.find(offer_id);
  return it == retirements_.end() ? Date() : it->second;
}

void Catalog::apply(const PromotionDefined& e, uint64_t event_seq) {
  promotions_[e.promotion_id] = Promotion{e, event_seq};
}

void Catalog::apply(const OfferRetired& e) { retirements_[e.offer_id] = e.retired_on; }

void Catalog::apply(const CustomerUpdated& e) {
  CustomerCreated& def = customers_.at(e.customer_id).def;
  def.company_name = e.company_name;
  def.organization_registration_number = e.organization_registration_number;
  def.phone = e.phone;
  def.middle_name = e.middle_name;
  def.segment = e.segment;
}

void Catalog::apply(const PartnerRegistered& e) { partners_[e.partner_id].def = e; }

void Catalog::apply(const CustomerCreated& e) {
  customers_[e.customer_id].def = e;
  partners_[e.partner_id].customer_ids.insert(e.customer_id);
}

void Catalog::apply(const OfferDefined& e) { offers_[e.offer_id] = e; }

void Catalog::apply(const PricePublished& e) {
  prices_[{e.offer_id, e.currency}][e.effective_from] = e.monthly_price_micros;
  max_price_micros_ = std::max(max_price_micros_, e.monthly_price_micros);
}

}  // namespace subledger
