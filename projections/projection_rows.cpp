#include "projections/projection_rows.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <nlohmann/json.hpp>

#include "projections/row_codec.h"

namespace subledger {

using Json = nlohmann::json;  // std::map objects: keys in a fixed order, so encoding is stable

// ---- value encodings (ADL hooks for nlohmann) ----

void to_json(Json& j, const Date& d) { j = d.days(); }
void from_json(const Json& j, Date& d) { d = Date::from_days(j.get<int32_t>()); }

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Term, start, anchor, end, price_micros)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PartnerRegistered, partner_id, country, currency, billing_day)
// With defaults: a catalog row written before markets and term_months reads with their defaults.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(OfferDefined, offer_id, name, segment,
                                                trial_eligible, addon_of, max_seats,
                                                max_per_customer, markets, term_months)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PromotionDefined, promotion_id, offer_ids, percent_off,
                                   purchase_from, purchase_to, applies_to_new, applies_to_renewal,
                                   markets, max_seats, new_customer_only, exclude_offers,
                                   exclude_cancel_days)

namespace {

std::string pack(const Json& j) {
  std::string out;
  Json::to_msgpack(j, out);
  return out;
}

Json unpack(std::string_view value) {
  return Json::from_msgpack(value.begin(), value.end(), /*strict=*/true, /*allow_exceptions=*/true);
}

std::string stream_key(StreamKind kind, const std::string& id) {
  std::string key(1, static_cast<char>('0' + static_cast<int>(kind)));
  key += id;
  return key;
}

std::string row_key(std::string_view prefix, std::string_view id) {
  std::string key(prefix);
  key += key_component(id);
  return key;
}

// Sorts and dedups, so each changed row is written once per batch.
template <typename T>
void unique(std::vector<T>& ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

}  // namespace

std::string key_component_prefix(std::string_view id_prefix) {
  std::string out;
  out.reserve(id_prefix.size() + 2);
  for (char c : id_prefix) {
    out.push_back(c);
    if (c == '\0') out.push_back('\x01');
  }
  return out;
}

std::string key_component(std::string_view id) {
  std::string out = key_component_prefix(id);
  out.append(2, '\0');
  return out;
}

std::string invoice_row_key(std::string_view invoice_id) {
  return row_key(kInvoiceRowPrefix, invoice_id);
}
std::string subscription_row_key(std::string_view subscription_id) {
  return row_key(kSubscriptionRowPrefix, subscription_id);
}
std::string customer_row_key(std::string_view customer_id) {
  return row_key(kCustomerRowPrefix, customer_id);
}
std::string customer_subscription_row_key(std::string_view customer_id, uint32_t index) {
  std::string key = customer_row_key(customer_id);
  key += 's';
  for (int shift = 24; shift >= 0; shift -= 8) key += static_cast<char>((index >> shift) & 0xff);
  return key;
}

std::string customer_line_row_key(std::string_view customer_id, uint64_t number) {
  std::string key = customer_row_key(customer_id);
  key += 'p';
  for (int shift = 56; shift >= 0; shift -= 8) key += static_cast<char>((number >> shift) & 0xff);
  return key;
}

std::optional<std::string> take_key_component(std::string_view& key) {
  std::string id;
  for (size_t i = 0; i < key.size(); ++i) {
    if (key[i] != '\0') {
      id.push_back(key[i]);
      continue;
    }
    if (i + 1 >= key.size()) return std::nullopt;
    if (key[i + 1] == '\0') {
      key.remove_prefix(i + 2);
      return id;
    }
    if (key[i + 1] != '\x01') return std::nullopt;
    id.push_back('\0');
    ++i;
  }
  return std::nullopt;
}

std::optional<CustomerRowKey> parse_customer_row_key(std::string_view key) {
  if (!key.starts_with(kCustomerRowPrefix)) return std::nullopt;
  std::string_view rest = key.substr(kCustomerRowPrefix.size());
  std::optional<std::string> id = take_key_component(rest);
  if (!id) return std::nullopt;
  CustomerRowKey out;
  out.customer_id = std::move(*id);
  auto number = [&](size_t bytes) {
    uint64_t n = 0;
    for (size_t b = 1; b <= bytes; ++b) n = n << 8 | static_cast<uint8_t>(rest[b]);
    return n;
  };
  if (rest.empty()) return out;
  if (rest[0] == 's' && rest.size() == 5) {
    out.kind = CustomerRowKey::Kind::kSubscription;
    out.index = number(4);
    return out;
  }
  if (rest[0] == 'p' && rest.size() == 9) {
    out.kind = CustomerRowKey::Kind::kLine;
    out.index = number(8);
    return out;
  }
  return std::nullopt;
}

absl::Status add_customer_row(CustomerRow& row, std::string_view key, std::string_view value) {
  auto bad = [&](const std::string& why) {
    return absl::DataLossError("customer row '" + std::string(key) + "' " + why);
  };
  std::optional<CustomerRowKey> parsed = parse_customer_row_key(key);
  if (!parsed) return bad("has a malformed key");
  const std::string& id = parsed->customer_id;
  if (parsed->kind == CustomerRowKey::Kind::kCustomer) {
    if (!row.customer.def.customer_id.empty()) return bad("follows another customer's rows");
    std::optional<CustomerRow> own = decode_customer(value);
    if (!own) return bad("is unreadable");
    if (own->customer.def.customer_id != id) return bad("holds another customer");
    row = std::move(*own);
    return absl::OkStatus();
  }
  if (row.customer.def.customer_id != id) return bad("is not under its customer's own row");
  if (parsed->kind == CustomerRowKey::Kind::kSubscription) {
    std::vector<std::string>& ids = row.customer.subscription_ids;
    if (parsed->index != ids.size() || ids.size() >= row.subscription_count || value.empty())
      return bad("does not fit the customer's subscriptions");
    ids.emplace_back(value);
    return absl::OkStatus();
  }
  std::optional<ChargeLine> line = decode_charge_line(value);
  if (!line) return bad("is unreadable");
  const uint64_t number = parsed->index;
  if (number >= row.next_line || row.pending.size() >= row.pending_count ||
      (!row.pending_numbers.empty() && number <= row.pending_numbers.back()))
    return bad("does not fit the customer's pending lines");
  row.pending.push_back(std::move(*line));
  row.pending_numbers.push_back(number);
  return absl::OkStatus();
}

absl::Status check_customer_rows(const CustomerRow& row) {
  if (row.customer.subscription_ids.size() != row.subscription_count ||
      row.pending.size() != row.pending_count)
    return absl::DataLossError("customer " + row.customer.def.customer_id +
                               " lacks some of the rows its own row counts");
  return absl::OkStatus();
}

std::string invoice_rows_prefix(std::string_view invoice_id_prefix) {
  return std::string(kInvoiceRowPrefix) + key_component_prefix(invoice_id_prefix);
}

bool meta_row_current(std::string_view meta_value) {
  try {
    return unpack(meta_value).at("format").get<int>() == kProjectionFormat;
  } catch (const Json::exception&) {
    return false;
  }
}

std::string encode_invoice_row(const IssuedInvoice& issued) {
  return encode_issued_invoice(issued);
}

std::optional<IssuedInvoice> decode_invoice_row(std::string_view value) {
  return decode_issued_invoice(value);
}

std::optional<Subscription> decode_subscription_row(std::string_view value) {
  return decode_subscription(value);
}

// ---- LedgerState rows ----

void LedgerState::take_changed_rows(const RowSink& put, const RowEraser& erase) {
  for (const auto& key : erased_rows_) erase(key);
  unique(changed_subscriptions_);
  unique(changed_customers_);
  put_rows(changed_subscriptions_, {}, catalog_changed_, put, /*meta=*/true);
  for (const auto& id : changed_customers_) {
    Customer* c = catalog_.customer_mut(id);
    if (!c) continue;
    auto found = pending_.find(id);
    PendingLines* pending = found == pending_.end() ? nullptr : &found->second;
    put_customer_rows(id, *c, pending, /*only_new=*/true, put);
    c->subscriptions_stored = static_cast<uint32_t>(c->subscription_ids.size());
    if (pending) pending->stored_next = pending->next;
  }
  for (const auto& issued : issued_since_)
    put(row_key(kInvoiceRowPrefix, issued.invoice.invoice_id), encode_invoice_row(issued));
  erased_rows_.clear();
  changed_subscriptions_.clear();
  changed_customers_.clear();
  catalog_changed_ = false;
  issued_since_.clear();
}

void LedgerState::put_all_rows(const RowSink& put, const RowSelection& selection) const {
  std::vector<std::string> customers;
  for (const auto& [id, p] : catalog_.partners())
    for (const auto& c : p.customer_ids)
      if (!selection.owns_customer || selection.owns_customer(c)) customers.push_back(c);
  unique(customers);
  // In key order (an audit looks each one up: neighbours share blocks).
  std::vector<uint32_t> slots(subs_.size());
  std::iota(slots.begin(), slots.end(), 0);
  std::sort(slots.begin(), slots.end(),
            [&](uint32_t a, uint32_t b) { return subs_[a].id < subs_[b].id; });
  put_rows(slots, customers, selection.catalog, put, selection.meta);
}

std::string encode_meta_row(uint64_t last_seq, const std::string& chain_head, Date clock,
                            uint64_t events_applied, uint64_t invoices_issued,
                            uint64_t subscriptions) {
  return pack(Json{{"format", kProjectionFormat},
                   {"last_seq", last_seq},
                   {"chain_head", chain_head},
                   {"clock", clock},
                   {"events_applied", events_applied},
                   {"invoices_issued", invoices_issued},
                   {"subscriptions", subscriptions}});
}

void LedgerState::put_customer_rows(const std::string& id, const Customer& c,
                                    const PendingLines* pending, bool only_new,
                                    const RowSink& put) const {
  auto version = stream_versions_.find(stream_key(StreamKind::kCustomer, id));
  put(row_key(kCustomerRowPrefix, id),
      encode_customer(c, version == stream_versions_.end() ? 0 : version->second,
                      static_cast<uint32_t>(c.subscription_ids.size()),
                      pending ? static_cast<uint32_t>(pending->lines.size()) : 0,
                      pending ? pending->next : 0));
  // The rows under it: all of them, or (only_new) those it gained since they were last put.
  for (size_t i = only_new ? c.subscriptions_stored : 0; i < c.subscription_ids.size(); ++i)
    put(customer_subscription_row_key(id, static_cast<uint32_t>(i)), c.subscription_ids[i]);
  if (!pending) return;
  const uint64_t first = only_new ? pending->stored_next : 0;
  for (size_t i = 0; i < pending->lines.size(); ++i)
    if (pending->numbers[i] >= first)
      put(customer_line_row_key(id, pending->numbers[i]), encode_charge_line(pending->lines[i]));
}

void LedgerState::put_rows(const std::vector<uint32_t>& subscription_slots,
                           const std::vector<std::string>& customer_ids, bool catalog,
                           const RowSink& put, bool meta) const {
  for (uint32_t slot : subscription_slots) {
    const Subscription& sub = subs_[slot];
    put(row_key(kSubscriptionRowPrefix, sub.id), encode_subscription(sub));
  }
  for (const auto& id : customer_ids) {
    const Customer* c = catalog_.customer(id);
    if (!c) continue;
    auto found = pending_.find(id);
    put_customer_rows(id, *c, found == pending_.end() ? nullptr : &found->second,
                      /*only_new=*/false, put);
  }
  if (catalog) {
    Json partners = Json::array(), offers = Json::array(), prices = Json::array(),
         versions = Json::array();
    for (const auto& [id, p] : catalog_.partners()) partners.push_back(p.def);
    for (const auto& [id, o] : catalog_.offers()) offers.push_back(o);
    for (const auto& [key, by_date] : catalog_.prices())
      for (const auto& [date, micros] : by_date)
        prices.push_back(Json{key.first, key.second, date, micros});
    // The catalog's streams only (customers' versions are in their own rows), in key order.
    std::vector<std::pair<std::string_view, uint64_t>> catalog_streams;
    for (const auto& [key, version] : stream_versions_)
      if (key[0] != '0' + static_cast<int>(StreamKind::kCustomer))
        catalog_streams.emplace_back(key, version);
    std::sort(catalog_streams.begin(), catalog_streams.end());
    for (const auto& [key, version] : catalog_streams) versions.push_back(Json{key, version});
    Json catalog_row{
        {"partners", partners}, {"offers", offers}, {"prices", prices}, {"versions", versions}};
    // Present only once a ledger has them, so an older catalog row keeps its bytes.
    if (!catalog_.promotions().empty()) {
      Json promotions = Json::array();
      for (const auto& [id, p] : catalog_.promotions())
        promotions.push_back(Json{p.def, p.event_seq});
      catalog_row["promotions"] = promotions;
    }
    if (!catalog_.retirements().empty()) {
      Json retirements = Json::array();
      for (const auto& [id, d] : catalog_.retirements()) retirements.push_back(Json{id, d});
      catalog_row["retirements"] = retirements;
    }
    put(kCatalogRow, pack(catalog_row));
  }
  if (meta)
    put(kMetaRow,
        encode_meta_row(last_seq_, chain_head_, billing_clock_, events_applied_, invoices_issued_,
                        subscriptions_in_ledger()));
}

absl::Status LedgerState::load_row(std::string_view key, std::string_view value) {
  try {
    if (key.starts_with(kSubscriptionRowPrefix)) {
      std::optional<Subscription> sub = decode_subscription(value);
      if (!sub)
        return absl::DataLossError("subscription row '" + std::string(key) + "' is unreadable");
      if (subs_by_ordinal_) {
        // The meta row came first (rows in key order): each row goes to its slot at once.
        const uint64_t ordinal = sub->ordinal;
        if (ordinal >= meta_subscriptions_)
          return absl::DataLossError("subscription row '" + std::string(key) +
                                     "' has a creation ordinal beyond the meta row's count");
        if (ordinal >= subs_.size()) subs_.resize(ordinal + 1);
        if (!subs_[ordinal].id.empty())
          return absl::DataLossError("two subscription rows have creation ordinal " +
                                     std::to_string(ordinal));
        subs_[ordinal] = std::move(*sub);
      } else {
        subs_.push_back(std::move(*sub));  // placed by creation ordinal in finish_load
      }
    } else if (key.starts_with(kCustomerRowPrefix)) {
      // A customer's rows come in key order: its own, then those under it. It is taken whole at
      // the next customer's own row, or at finish_load().
      std::optional<CustomerRowKey> parsed = parse_customer_row_key(key);
      if (parsed && parsed->kind == CustomerRowKey::Kind::kCustomer && loading_)
        if (absl::Status s = take_loading_customer(); !s.ok()) return s;
      if (!loading_) loading_.emplace();
      if (absl::Status s = add_customer_row(*loading_, key, value); !s.ok()) return s;
    } else if (key == kCatalogRow) {
      Json j = unpack(value);
      for (const auto& p : j.at("partners")) catalog_.apply(p.get<PartnerRegistered>());
      for (const auto& o : j.at("offers")) catalog_.apply(o.get<OfferDefined>());
      for (const auto& p : j.at("prices"))
        catalog_.apply(PricePublished{p.at(0).get<std::string>(), p.at(1).get<std::string>(),
                                      p.at(3).get<int64_t>(), p.at(2).get<Date>()});
      if (j.contains("promotions"))
        for (const auto& p : j.at("promotions"))
          catalog_.apply(p.at(0).get<PromotionDefined>(), p.at(1).get<uint64_t>());
      if (j.contains("retirements"))
        for (const auto& r : j.at("retirements"))
          catalog_.apply(OfferRetired{r.at(0).get<std::string>(), r.at(1).get<Date>()});
      for (const auto& v : j.at("versions"))
        stream_versions_[v.at(0).get<std::string>()] = v.at(1).get<uint64_t>();
    } else if (key == kMetaRow) {
      Json j = unpack(value);
      if (j.at("format").get<int>() != kProjectionFormat)
        return absl::FailedPreconditionError("projection rows of another format");
      j.at("last_seq").get_to(last_seq_);
      j.at("chain_head").get_to(chain_head_);
      j.at("clock").get_to(billing_clock_);
      j.at("events_applied").get_to(events_applied_);
      j.at("invoices_issued").get_to(invoices_issued_);
      j.at("subscriptions").get_to(meta_subscriptions_);
      subs_by_ordinal_ = !subset_ && subs_.empty();
    }
  } catch (const Json::exception& e) {
    return absl::DataLossError("projection row '" + std::string(key) +
                               "' is unreadable: " + e.what());
  }
  return absl::OkStatus();
}

absl::Status LedgerState::take_loading_customer() {
  CustomerRow row = std::move(*loading_);
  loading_.reset();
  if (absl::Status s = check_customer_rows(row); !s.ok()) return s;
  take_customer_row(std::move(row));
  return absl::OkStatus();
}

absl::Status LedgerState::finish_load() {
  if (loading_)
    if (absl::Status s = take_loading_customer(); !s.ok()) return s;
  // The table is by creation ordinal. Rows loaded before the meta row (or into a subset) arrive
  // in key order and are sorted in place, so loading never holds two copies of the subscriptions.
  auto by_ordinal = [](const Subscription& a, const Subscription& b) {
    return a.ordinal < b.ordinal;
  };
  if (!std::is_sorted(subs_.begin(), subs_.end(), by_ordinal))
    std::sort(subs_.begin(), subs_.end(), by_ordinal);
  sub_index_.reserve(subs_.size());
  subscription_order_.reserve(subs_.size());
  for (uint32_t i = 0; i < subs_.size(); ++i) {
    // A subset holds some of the ordinals below the meta row's count, each once; the whole
    // state holds every one of them.
    const bool placed = subset_ ? subs_[i].ordinal < meta_subscriptions_ &&
                                      (i == 0 || subs_[i - 1].ordinal < subs_[i].ordinal)
                                : subs_[i].ordinal == i && !subs_[i].id.empty();
    if (!placed) return absl::DataLossError("subscription rows with a bad creation ordinal");
    sub_index_.emplace(subs_[i].id, i);
    note_bounds(subs_[i]);
    subscription_order_.push_back(subs_[i].id);
  }
  if (!subset_ && subs_.size() != meta_subscriptions_)
    return absl::DataLossError("the meta row counts " + std::to_string(meta_subscriptions_) +
                               " subscriptions, the rows hold " + std::to_string(subs_.size()));
  next_ordinal_ = meta_subscriptions_;
  for (const auto& [partner_id, partner] : catalog_.partners()) {
    for (const auto& customer_id : partner.customer_ids) {
      Customer* c = catalog_.customer_mut(customer_id);
      c->subscription_ordinals.clear();
      for (const auto& id : c->subscription_ids) {
        auto it = sub_index_.find(id);
        if (it == sub_index_.end())
          return absl::DataLossError("customer " + customer_id + " lists an unknown subscription");
        c->subscription_ordinals.push_back(it->second);
      }
    }
  }
  if (last_seq_ == 0 && !subs_.empty())
    return absl::DataLossError("projection rows without a meta row");
  return absl::OkStatus();
}

absl::Status LedgerState::load_customer(const std::string& customer_id, CustomerRow&& row,
                                        std::vector<Subscription>&& subscriptions) {
  if (!subset_ || undo_)
    return absl::FailedPreconditionError("only a subset outside an undo group loads customers");
  const std::string& id = customer_id;
  if (row.customer.def.customer_id != id)
    return absl::DataLossError("the row of customer " + id + " holds another customer");
  if (catalog_.customer(id)) return absl::FailedPreconditionError("customer " + id + " is loaded");
  if (!catalog_.partner(row.customer.def.partner_id))
    return absl::DataLossError("customer " + id + " of a partner the catalog row lacks");
  const std::vector<std::string>& ids = row.customer.subscription_ids;
  if (subscriptions.size() != ids.size())
    return absl::DataLossError("customer " + id + " and its subscription rows disagree");
  for (size_t i = 0; i < ids.size(); ++i) {
    const Subscription& sub = subscriptions[i];
    if (sub.id != ids[i] || sub.customer_id != id || sub.ordinal >= next_ordinal_ ||
        sub_index_.contains(sub.id) ||
        std::find(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(i), sub.id) !=
            ids.begin() + static_cast<ptrdiff_t>(i))
      return absl::DataLossError("subscription row " + sub.id + " does not fit customer " + id);
  }
  // Each subscription goes to the end of the table: its index there is what the customer keeps.
  std::vector<uint32_t> ordinals;
  ordinals.reserve(ids.size());
  for (Subscription& sub : subscriptions) {
    const auto index = static_cast<uint32_t>(subs_.size());
    sub_index_.emplace(sub.id, index);
    subscription_order_.push_back(sub.id);
    note_bounds(sub);
    subs_.push_back(std::move(sub));
    ordinals.push_back(index);
  }
  take_customer_row(std::move(row))->subscription_ordinals = std::move(ordinals);
  return absl::OkStatus();
}

absl::Status LedgerState::load_customer_in_part(const std::string& customer_id,
                                                CustomerRow&& row) {
  if (!subset_ || undo_)
    return absl::FailedPreconditionError("only a subset outside an undo group loads customers");
  if (row.customer.def.customer_id != customer_id)
    return absl::DataLossError("the row of customer " + customer_id + " holds another customer");
  if (catalog_.customer(customer_id))
    return absl::FailedPreconditionError("customer " + customer_id + " is loaded");
  if (!catalog_.partner(row.customer.def.partner_id))
    return absl::DataLossError("customer " + customer_id + " of a partner the catalog row lacks");
  take_customer_row(std::move(row))->subscription_ordinals.clear();
  in_part_.insert(customer_id);
  return absl::OkStatus();
}

absl::Status LedgerState::load_subscription_of(Subscription&& sub) {
  Customer* c = in_part_.contains(sub.customer_id) ? catalog_.customer_mut(sub.customer_id)
                                                   : nullptr;
  if (!c)
    return absl::FailedPreconditionError("subscription " + sub.id +
                                         ": its customer is not loaded in part");
  if (sub.ordinal >= next_ordinal_ || sub_index_.contains(sub.id) ||
      std::find(c->subscription_ids.begin(), c->subscription_ids.end(), sub.id) ==
          c->subscription_ids.end())
    return absl::DataLossError("subscription row " + sub.id + " does not fit customer " +
                               sub.customer_id);
  const auto index = static_cast<uint32_t>(subs_.size());
  sub_index_.emplace(sub.id, index);
  subscription_order_.push_back(sub.id);
  note_bounds(sub);
  subs_.push_back(std::move(sub));
  c->subscription_ordinals.push_back(index);
  return absl::OkStatus();
}

absl::Status LedgerState::complete_customer(const std::string& customer_id) {
  if (!in_part_.contains(customer_id))
    return absl::FailedPreconditionError("customer " + customer_id + " is not loaded in part");
  Customer* c = catalog_.customer_mut(customer_id);
  // Whole, a customer's subscriptions are in its list's order (invoicing walks them so).
  std::vector<uint32_t> ordinals;
  ordinals.reserve(c->subscription_ids.size());
  for (const std::string& id : c->subscription_ids) {
    auto it = sub_index_.find(id);
    if (it == sub_index_.end())
      return absl::DataLossError("customer " + customer_id + " lacks subscription " + id);
    ordinals.push_back(it->second);
  }
  c->subscription_ordinals = std::move(ordinals);
  in_part_.erase(customer_id);
  return absl::OkStatus();
}

Customer* LedgerState::take_customer_row(CustomerRow&& row) {
  const std::string id = row.customer.def.customer_id;
  catalog_.apply(row.customer.def);
  Customer* c = catalog_.customer_mut(id);
  c->subscription_ids = std::move(row.customer.subscription_ids);
  c->trial_offers = std::move(row.customer.trial_offers);
  c->agreements = std::move(row.customer.agreements);
  c->subscriptions_stored = static_cast<uint32_t>(c->subscription_ids.size());
  stream_versions_[stream_key(StreamKind::kCustomer, id)] = row.version;
  if (row.next_line != 0) {
    PendingLines& pending = pending_[id];
    pending = PendingLines{std::move(row.pending), std::move(row.pending_numbers), row.next_line,
                           row.next_line};
    for (const ChargeLine& line : pending.lines)
      pending.magnitude += PendingLines::magnitude_of(line);
  }
  return c;
}

LedgerState LedgerState::without_customers() const {
  LedgerState out = subset();
  absl::Status loaded;
  put_rows({}, {}, /*catalog=*/true, [&](std::string_view key, std::string_view value) {
    if (loaded.ok()) loaded = out.load_row(key, value);
  });
  if (loaded.ok()) loaded = out.finish_load();
  // Rows this state just encoded read back (a round trip every open relies on).
  if (!loaded.ok()) throw std::logic_error("the catalog and meta rows do not read back: " +
                                           std::string(loaded.message()));
  out.invoices_issued_ = invoices_issued_;
  out.max_term_price_micros_ = max_term_price_micros_;
  out.max_seats_ = max_seats_;
  return out;
}

}  // namespace subledger
