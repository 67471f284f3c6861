// Catalog: partners, customers, offers and the price list, as evolved from their events.
//
// The price list keeps every publication per (offer, currency), keyed by effective date; a later
// publication of the same key replaces the earlier one (BILLING_RULES 1). Containers that are ever
// iterated for output or decisions are ordered (std::map / sorted vectors): no hash-order leaks.
// Not thread-safe: one writer.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "events/date.h"
#include "events/event.h"

namespace subledger {

struct Partner {
  PartnerRegistered def;
  std::set<std::string> customer_ids;  // sorted: invoices are cut in customer order
};

// A customer agreement the customer accepted (AgreementAccepted), with its contact.
struct Agreement {
  std::string agreement_type;
  Date date_agreed;
  std::string first_name, last_name, email;
  uint64_t event_seq = 0;
  friend bool operator==(const Agreement&, const Agreement&) = default;
};

struct Customer {
  CustomerCreated def;
  std::vector<std::string> subscription_ids;    // in creation order
  std::vector<uint32_t> subscription_ordinals;  // the same, as indexes into LedgerState's table
  std::set<std::string> trial_offers;           // offers this customer has ever trialled
  std::vector<Agreement> agreements;            // in the order accepted; one per type
  // How many of subscription_ids have rows under the customer's (LedgerState's change tracking).
  uint32_t subscriptions_stored = 0;
  const Agreement* agreement(const std::string& type) const {
    for (const auto& a : agreements)
      if (a.agreement_type == type) return &a;
    return nullptr;
  }
};

// A promotion as defined, with the event that defined it (explain shows it beside a line).
struct Promotion {
  PromotionDefined def;
  uint64_t event_seq = 0;
  friend bool operator==(const Promotion&, const Promotion&) = default;
};

class Catalog {
 public:
  const Partner* partner(const std::string& id) const;
  const Customer* customer(const std::string& id) const;
  Customer* customer_mut(const std::string& id);
  const OfferDefined* offer(const std::string& id) const;
  // The monthly price in force for (offer, currency) on `date`, or nullopt.
  std::optional<int64_t> price_at(const std::string& offer_id, const std::string& currency,
                                  Date date) const;
  const std::map<std::string, Partner>& partners() const { return partners_; }
  const std::map<std::string, OfferDefined>& offers() const { return offers_; }
  const Promotion* promotion(const std::string& id) const;
  // By id: byte order, the tie-break among promotions of the same percentage (BILLING_RULES 12).
  const std::map<std::string, Promotion>& promotions() const { return promotions_; }
  // BILLING_RULES 13: the date from which the offer cannot be bought, or none.
  Date retired_on(const std::string& offer_id) const;
  const std::map<std::string, Date>& retirements() const { return retirements_; }
  using PriceList = std::map<std::pair<std::string, std::string>, std::map<Date, int64_t>>;
  const PriceList& prices() const { return prices_; }
  size_t customer_count() const { return customers_.size(); }
  // The highest monthly price ever published, in any currency (0 before the first): what bounds
  // every subscription's term amount at once (the amount-range check's fast path).
  int64_t max_price_micros() const { return max_price_micros_; }

  void apply(const PartnerRegistered& e);
  void apply(const CustomerCreated& e);
  void apply(const OfferDefined& e);
  void apply(const PricePublished& e);
  void apply(const PromotionDefined& e, uint64_t event_seq);
  void apply(const OfferRetired& e);
  // REQUIRES: the customer exists.
  void apply(const CustomerUpdated& e);

 private:
  std::map<std::string, Partner> partners_;
  absl::flat_hash_map<std::string, Customer> customers_;  // lookup only, never iterated
  std::map<std::string, OfferDefined> offers_;
  PriceList prices_;
  std::map<std::string, Promotion> promotions_;
  std::map<std::string, Date> retirements_;
  int64_t max_price_micros_ = 0;
};

}  // namespace subledger
