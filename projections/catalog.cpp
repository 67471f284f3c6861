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
