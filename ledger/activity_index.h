// An in-memory index of the durable log for the server's partner-facing reads: each partner's
// activity (the events its audit records show, numbered by the partner's own position) and the
// issued invoices by partner and by customer in listing order. A listing, a type filter or a
// count reads the index (binary searches) and then only the rows it returns: never the whole log.
//
// Caught up from a Store on demand with the events written since the last catch-up (the whole log
// the first time), so it holds only durable events whichever thread asks. Thread-safe.
#pragma once

#include <absl/status/status.h>
#include <absl/synchronization/mutex.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ledger/queries.h"
#include "ledger/store.h"

namespace subledger {

class ActivityIndex {
 public:
  // Indexes the events after the last one indexed. Any error leaves the index as it was.
  [[nodiscard]] absl::Status catch_up(const Store& store);
  uint64_t indexed_through() const;

  // A partner's activity: its own PartnerRegistered, the events of its customers and of their
  // subscriptions (customers it created in its scope: ids "<partner>:..."), their invoices, and
  // the catalog (offers and prices); never a billing run. Positions are 1-based and gap-free per
  // partner: they say nothing of other partners' events.
  struct Activity {
    uint64_t position = 0, seq = 0;
  };
  struct ActivityPage {
    std::vector<Activity> items;
    bool more = false;  // entries after the last item exist
  };
  // At most `limit` entries with a position after `after`, of payload type `type` (its index in
  // EventPayload; all when nullopt).
  ActivityPage activity(const std::string& partner, uint64_t after, std::optional<size_t> type,
                        size_t limit) const;
  // The position of event `seq` in `partner`'s activity (the `seq` its audit records show), or
  // nullopt when the event is not part of it (or not indexed yet).
  std::optional<uint64_t> position_of(const std::string& partner, uint64_t seq) const;
  // Whether `partner` owns the customer: created for that partner with an id in its scope.
  bool owns_customer(const std::string& partner, const std::string& customer_id) const;

  struct InvoiceRef {
    Date date;
    std::string invoice_id, customer_id, partner_id;
  };
  // The issued invoices `selection` names, in the order `invoices` prints (invoice date, then
  // id): how many, and those from `offset` on, at most `limit`. Cost: a few binary searches and
  // the page.
  size_t invoices(const InvoiceSelection& selection, size_t offset, size_t limit,
                  std::vector<InvoiceRef>& page) const;
  // At most `limit` selected invoices after `after` (date and id; nullopt: from the first).
  std::vector<InvoiceRef> invoices_after(const InvoiceSelection& selection,
                                         const std::optional<std::pair<Date, std::string>>& after,
                                         size_t limit) const;

 private:
  struct PartnerLog {
    std::vector<uint64_t> seqs;                            // position - 1 -> sequence number
    std::map<size_t, std::vector<uint64_t>> by_type;  // payload index -> positions, ascending
  };
  void add(PartnerLog& log, uint64_t seq, size_t type);
  const std::vector<InvoiceRef>* invoice_list(const InvoiceSelection& selection) const;

  mutable absl::Mutex mutex_;
  uint64_t through_ = 0;
  std::map<std::string, PartnerLog> partners_;
  std::vector<std::pair<uint64_t, size_t>> catalog_;  // seq, type: every partner sees these
  std::map<std::string, std::string> customer_owner_, subscription_owner_;  // id -> partner
  std::vector<InvoiceRef> all_invoices_;
  std::map<std::string, std::vector<InvoiceRef>> by_partner_, by_customer_;
};

}  // namespace subledger
