// The listings (`customers`, `subscriptions`, `offers`, `prices`, `trials`) and `summary`: what a
// billing-operations engineer looks up, as tables on a terminal and JSON lines otherwise.
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>

#include "app/output.h"
#include "app/shell.h"
#include "app/subcommands.h"
#include "app/summary.h"
#include "app/tables.h"
#include "events/money.h"
#include "ledger/ledger.h"
#include "ledger/queries.h"
#include "projections/views.h"

namespace subledger::cli {

namespace {

// Opens the ledger read-only, checks the ids the filters name, and prints what `records` gives.
int list(const ListOptions& o, const View& view,
         const std::vector<std::pair<std::string_view, std::string>>& filters,
         const std::function<std::vector<Record>(const LedgerState&)>& records, std::ostream& out) {
  auto ledger = open_ledger(o.db, Mode::kRead);
  if (!ledger.ok()) return fail_status(ledger.status());
  const LedgerState& state = (*ledger)->state();
  const KnownIds ids = known_ids(state);
  for (const auto& [kind, id] : filters)
    if (absl::Status known = require_known(ids, kind, id); !known.ok()) return fail_status(known);
  print_records(records(state), view, resolve_format(o.format), out);
  return kExitOk;
}

Record parsed(const std::string& json) { return Record::parse(json); }

}  // namespace

int customers(const ListOptions& o, std::ostream& out) {
  return list(
      o, customer_view(), {{"partner", o.partner}},
      [&](const LedgerState& state) {
        std::vector<Record> records;
        for (const auto& [partner_id, partner] : state.catalog().partners()) {
          if (!o.partner.empty() && partner_id != o.partner) continue;
          for (const std::string& id : partner.customer_ids)
            records.push_back(parsed(customer_json(state.catalog().customer(id)->def)));
        }
        return records;
      },
      out);
}

namespace {

// Subscriptions in creation order that `keep` accepts.
std::vector<Record> subscriptions_where(const LedgerState& state,
                                        const std::function<bool(const Subscription&)>& keep) {
  std::vector<Record> records;
  for (const std::string& id : state.subscription_ids())
    if (const Subscription* s = state.subscription(id); keep(*s))
      records.push_back(parsed(subscription_json(*s)));
  return records;
}

}  // namespace

int subscriptions(const ListOptions& o, std::ostream& out) {
  return list(
      o, subscription_view(), {{"customer", o.customer}, {"offer", o.offer}},
      [&](const LedgerState& state) {
        return subscriptions_where(state, [&](const Subscription& s) {
          return (o.customer.empty() || s.customer_id == o.customer) &&
                 (o.offer.empty() || s.offer_id == o.offer) &&
                 (o.status.empty() || to_string(s.status) == o.status);
        });
      },
      out);
}

int trials(const ListOptions& o, std::ostream& out) {
  int status = kExitOk;
  auto before = parse_date_arg(o.expiring_before, "--expiring-before", status);
  if (status) return status;
  return list(
      o, trial_view(), {},
      [&](const LedgerState& state) {
        return subscriptions_where(state, [&](const Subscription& s) {
          return s.status == Status::kTrial && (!before || s.trial_end < *before);
        });
      },
      out);
}

int offers(const ListOptions& o, std::ostream& out) {
  return list(
      o, offer_view(), {},
      [](const LedgerState& state) {
        std::vector<Record> records;
        for (const auto& [id, offer] : state.catalog().offers())
          records.push_back(parsed(payload_json(offer)));
        return records;
      },
      out);
}

int prices(const ListOptions& o, std::ostream& out) {
  int status = kExitOk;
  auto as_of = parse_date_arg(o.as_of, "--as-of", status);
  if (status) return status;
  return list(
      o, price_view(), {{"offer", o.offer}},
      [&](const LedgerState& state) {
        std::vector<Record> records;
        for (const auto& [key, by_date] : state.catalog().prices()) {
          if (!o.offer.empty() && key.first != o.offer) continue;
          // With --as-of, the price in force that day (the last publication effective by then).
          auto first = by_date.begin(), last = by_date.end();
          if (as_of) {
            last = by_date.upper_bound(*as_of);
            if (last == by_date.begin()) continue;
            first = std::prev(last);
          }
          for (auto it = first; it != last; ++it)
            records.push_back(
                parsed(payload_json(PricePublished{key.first, key.second, it->second, it->first})));
        }
        return records;
      },
      out);
}

int summary(const SummaryOptions& o, std::ostream& out) {
  int status = kExitOk;
  auto from = parse_date_arg(o.from, "--from", status);
  auto to = parse_date_arg(o.to, "--to", status);
  if (status) return status;
  if (!from || !to) return fail("summary needs --from DATE and --to DATE (YYYY-MM-DD)");
  if (*to < *from)
    return fail("--from " + from->iso() + " is after --to " + to->iso() + "; give a range");
  if (!o.currency.empty() && !find_currency(o.currency))
    return fail("--currency must be an ISO 4217 code such as USD or EUR; got '" + o.currency + "'");
  return query_rows(
      o.db, Store::Reads::kMany,
      [&](const Store& store) -> absl::StatusOr<std::string> {
        InvoiceSummary totals(o.by);
        absl::Status read = for_each_issued_invoice(
            store, InvoiceSelection{"", "", *from, *to}, [&](const IssuedInvoice& issued) {
              if (o.currency.empty() || issued.invoice.currency == o.currency)
                totals.add(issued.invoice);
              return true;
            });
        if (!read.ok()) return read;
        std::ostringstream text;
        print_records(totals.records(), totals.view(), resolve_format(o.format), text);
        return text.str();
      },
      out);
}

}  // namespace subledger::cli
