#include "ledger/activity_index.h"

#include <algorithm>
#include <tuple>

#include "events/codec.h"

namespace subledger {

namespace {

bool before(const ActivityIndex::InvoiceRef& a, const ActivityIndex::InvoiceRef& b) {
  return std::tie(a.date, a.invoice_id) < std::tie(b.date, b.invoice_id);
}

// Invoice lists a catch-up appends to, each with the size it had before. Invoices arrive in log
// order, and a billing run cuts them by date, then partner, then customer: in listing order (date,
// then id) one partner's fall between another's. Inserting each in place moved half of a list
// every time (`serve` spent minutes indexing a 3M-subscription ledger before it listened): the new
// ones are appended, then sorted and merged with the old, once per list and catch-up.
class Appended {
 public:
  void append(std::vector<ActivityIndex::InvoiceRef>& list, const ActivityIndex::InvoiceRef& ref) {
    sizes_.try_emplace(&list, list.size());
    list.push_back(ref);
  }
  void sort_all() {
    for (auto& [list, old_size] : sizes_) {
      auto middle = list->begin() + static_cast<std::ptrdiff_t>(old_size);
      std::sort(middle, list->end(), before);
      // Only the old ones after the first new one move (none when a run follows the last).
      if (middle != list->end())
        std::inplace_merge(std::upper_bound(list->begin(), middle, *middle, before), middle,
                           list->end(), before);
    }
    sizes_.clear();
  }

 private:
  std::map<std::vector<ActivityIndex::InvoiceRef>*, size_t> sizes_;
};

// The partner a scoped id names ("P1:C1" -> "P1"), "" for an unscoped one.
std::string scope_of(const std::string& id) {
  size_t colon = id.find(':');
  return colon == std::string::npos ? "" : id.substr(0, colon);
}

}  // namespace

uint64_t ActivityIndex::indexed_through() const {
  absl::MutexLock lock(&mutex_);
  return through_;
}

void ActivityIndex::add(PartnerLog& log, uint64_t seq, size_t type) {
  log.seqs.push_back(seq);
  log.by_type[type].push_back(log.seqs.size());
}

absl::Status ActivityIndex::catch_up(const Store& store) {
  absl::MutexLock lock(&mutex_);
  EventDecoder decoder;
  Event e;
  Appended appended;
  absl::Status error;
  absl::Status scan = store.scan_events(through_, [&](uint64_t seq, std::string_view bytes) {
    error = decoder.decode(bytes, e);
    if (!error.ok()) {
      error = at_event(seq, error);
      return false;
    }
    const size_t type = e.payload.index();
    std::string owner;
    switch (e.stream.kind) {
      case StreamKind::kPartner: {
        auto [it, fresh] = partners_.try_emplace(e.stream.id);
        if (fresh)
          for (const auto& [catalog_seq, catalog_type] : catalog_) add(it->second, catalog_seq, catalog_type);
        owner = e.stream.id;
        break;
      }
      case StreamKind::kOffer:
      case StreamKind::kPromotion:  // the catalog: every partner sees it
        catalog_.emplace_back(seq, type);
        for (auto& [partner, log] : partners_) add(log, seq, type);
        break;
      case StreamKind::kCustomer:
        if (const auto* created = std::get_if<CustomerCreated>(&e.payload);
            created && scope_of(created->customer_id) == created->partner_id)
          customer_owner_[created->customer_id] = created->partner_id;
        if (auto it = customer_owner_.find(e.stream.id); it != customer_owner_.end())
          owner = it->second;
        if (const auto* issued = std::get_if<InvoiceIssued>(&e.payload)) {
          InvoiceRef ref{issued->invoice_date, issued->invoice_id, issued->customer_id,
                         issued->partner_id};
          appended.append(all_invoices_, ref);
          appended.append(by_customer_[issued->customer_id], ref);
          if (owner == issued->partner_id) appended.append(by_partner_[owner], ref);
        }
        break;
      case StreamKind::kSubscription:
        if (const std::string* customer = opening_customer_of(e.payload))
          if (auto it = customer_owner_.find(*customer); it != customer_owner_.end())
            subscription_owner_[e.stream.id] = it->second;
        if (auto it = subscription_owner_.find(e.stream.id); it != subscription_owner_.end())
          owner = it->second;
        break;
      default:
        break;  // billing runs sum every partner: nobody's activity
    }
    if (!owner.empty())
      if (auto it = partners_.find(owner); it != partners_.end()) add(it->second, seq, type);
    through_ = seq;
    return true;
  });
  appended.sort_all();  // what was indexed before an error stays, in order
  if (!scan.ok()) return absl::UnavailableError("reading the log failed: " + std::string(scan.message()));
  return error;
}

ActivityIndex::ActivityPage ActivityIndex::activity(const std::string& partner, uint64_t after,
                                                    std::optional<size_t> type,
                                                    size_t limit) const {
  absl::MutexLock lock(&mutex_);
  ActivityPage page;
  auto it = partners_.find(partner);
  if (it == partners_.end()) return page;
  const PartnerLog& log = it->second;
  if (!type) {
    for (uint64_t p = after + 1; p <= log.seqs.size(); ++p) {
      if (page.items.size() == limit) {
        page.more = true;
        break;
      }
      page.items.push_back(Activity{p, log.seqs[p - 1]});
    }
    return page;
  }
  auto of_type = log.by_type.find(*type);
  if (of_type == log.by_type.end()) return page;
  const auto& positions = of_type->second;
  for (auto p = std::upper_bound(positions.begin(), positions.end(), after); p != positions.end();
       ++p) {
    if (page.items.size() == limit) {
      page.more = true;
      break;
    }
    page.items.push_back(Activity{*p, log.seqs[*p - 1]});
  }
  return page;
}

std::optional<uint64_t> ActivityIndex::position_of(const std::string& partner,
                                                   uint64_t seq) const {
  absl::MutexLock lock(&mutex_);
  auto it = partners_.find(partner);
  if (it == partners_.end()) return std::nullopt;
  const std::vector<uint64_t>& seqs = it->second.seqs;  // ascending: the log's order
  auto at = std::lower_bound(seqs.begin(), seqs.end(), seq);
  if (at == seqs.end() || *at != seq) return std::nullopt;
  return static_cast<uint64_t>(at - seqs.begin()) + 1;
}

bool ActivityIndex::owns_customer(const std::string& partner,
                                  const std::string& customer_id) const {
  absl::MutexLock lock(&mutex_);
  auto it = customer_owner_.find(customer_id);
  return it != customer_owner_.end() && it->second == partner;
}

const std::vector<ActivityIndex::InvoiceRef>* ActivityIndex::invoice_list(
    const InvoiceSelection& selection) const {
  static const std::vector<InvoiceRef> kNone;
  if (!selection.customer_id.empty()) {
    if (!selection.partner_id.empty()) {
      auto owner = customer_owner_.find(selection.customer_id);
      if (owner == customer_owner_.end() || owner->second != selection.partner_id) return &kNone;
    }
    auto it = by_customer_.find(selection.customer_id);
    return it == by_customer_.end() ? &kNone : &it->second;
  }
  if (selection.partner_id.empty()) return &all_invoices_;
  auto it = by_partner_.find(selection.partner_id);
  return it == by_partner_.end() ? &kNone : &it->second;
}

namespace {

// The part of `list` whose dates are in [from, to] (open ends when none).
std::pair<size_t, size_t> date_range(const std::vector<ActivityIndex::InvoiceRef>& list,
                                     Date from, Date to) {
  auto first = from.is_none() ? list.begin()
                              : std::partition_point(list.begin(), list.end(),
                                                     [&](const auto& r) { return r.date < from; });
  auto last = to.is_none() ? list.end()
                           : std::partition_point(first, list.end(),
                                                  [&](const auto& r) { return r.date <= to; });
  return {static_cast<size_t>(first - list.begin()), static_cast<size_t>(last - list.begin())};
}

}  // namespace

size_t ActivityIndex::invoices(const InvoiceSelection& selection, size_t offset, size_t limit,
                               std::vector<InvoiceRef>& page) const {
  absl::MutexLock lock(&mutex_);
  page.clear();
  const std::vector<InvoiceRef>* list = invoice_list(selection);
  auto [first, last] = date_range(*list, selection.from, selection.to);
  for (size_t i = first + offset; i < last && page.size() < limit; ++i) page.push_back((*list)[i]);
  return last - first;
}

std::vector<ActivityIndex::InvoiceRef> ActivityIndex::invoices_after(
    const InvoiceSelection& selection, const std::optional<std::pair<Date, std::string>>& after,
    size_t limit) const {
  absl::MutexLock lock(&mutex_);
  std::vector<InvoiceRef> out;
  const std::vector<InvoiceRef>* list = invoice_list(selection);
  auto [first, last] = date_range(*list, selection.from, selection.to);
  if (after) {
    InvoiceRef mark{after->first, after->second, "", ""};
    first = std::max(first, static_cast<size_t>(std::upper_bound(list->begin(), list->end(),
                                                                  mark, before) -
                                                 list->begin()));
  }
  for (size_t i = first; i < last && out.size() < limit; ++i) out.push_back((*list)[i]);
  return out;
}

}  // namespace subledger
