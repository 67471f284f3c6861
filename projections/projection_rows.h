// Projection rows: how LedgerState is stored beside the log, so opening a ledger loads the rows
// and catches up from their checkpoint instead of replaying everything.
//
// Keys (the store's projections column family):
//   "meta"          format, last applied sequence, chain head, billing clock, counters
//   "catalog"       partners, offers, price list, versions of partner/offer/ledger streams
// (<id> is key_component(id): no id's row key is a prefix of another id's.)
//   "cust/<id>"     customer, trialled offers, stream version, and how many rows are under it:
//   "cust/<id>s<n>"   its n-th subscription's id (n: big-endian 32 bits, creation order)
//   "cust/<id>p<n>"   a pending charge line numbered n (big-endian 64 bits; numbers ascend in
//                     the order the lines arose and are never reused)
//                   A change writes the customer's own row, the rows it adds, and erases the
//                   rows of the lines it invoices: never the customer's whole history again.
//   "sub/<id>"      one subscription (with its creation ordinal)
//   "inv/<id>"      one issued invoice with its lines (written once, never changed)
// sub/, cust/ (lines too) and inv/ rows are packed Cap'n Proto (projections/rows.capnp, row_codec.h); meta and
// catalog are small MessagePack (nlohmann::json). Both are deterministic: the same state gives the
// same bytes, which is how `replay --verify` compares stored rows with a fresh replay.
// Pure functions; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "projections/ledger_state.h"

namespace subledger {

// Bump when the row encoding or keys change: older rows are then dropped and rebuilt from the log.
// 3: ids in keys are key_component()s. 4: the meta row counts the ledger's subscriptions (the
// creation ordinal of the next one), so a subset of the rows can fold a tail (LedgerState::subset).
// 5: a customer's subscriptions and pending lines are rows of their own under the customer's.
inline constexpr int kProjectionFormat = 5;

// An id as one component of a key: every '\0' becomes "\0\x01" and the component ends with
// "\0\0", so no encoded id is a prefix of another's (whatever bytes ids may hold) and the byte
// order of ids is kept. key_component_prefix() leaves the end off: the start of the components
// of every id that begins with `id_prefix`. Used for every key made from an id (ledger/store.h).
std::string key_component(std::string_view id);
std::string key_component_prefix(std::string_view id_prefix);
// The id of the key_component at the start of `key`, which then starts past it; nullopt (and
// `key` unspecified) when it is malformed.
std::optional<std::string> take_key_component(std::string_view& key);

inline constexpr std::string_view kMetaRow = "meta";
inline constexpr std::string_view kInvoiceRowPrefix = "inv/";

inline constexpr std::string_view kSubscriptionRowPrefix = "sub/";
inline constexpr std::string_view kCustomerRowPrefix = "cust/";
inline constexpr std::string_view kCatalogRow = "catalog";
// The keys (prefixes) of every row LedgerState::load_row reads, in key order: all rows but the
// invoices and the checkpoint.
inline constexpr std::string_view kStateRowPrefixes[] = {kCatalogRow, kCustomerRowPrefix, kMetaRow,
                                                         kSubscriptionRowPrefix};

std::string invoice_row_key(std::string_view invoice_id);
std::string subscription_row_key(std::string_view subscription_id);
std::string customer_row_key(std::string_view customer_id);
std::string customer_subscription_row_key(std::string_view customer_id, uint32_t index);
std::string customer_line_row_key(std::string_view customer_id, uint64_t number);

// A key of a customer's rows: its own, or one under it. nullopt: not such a key.
struct CustomerRowKey {
  enum class Kind { kCustomer, kSubscription, kLine };
  Kind kind = Kind::kCustomer;
  std::string customer_id;
  uint64_t index = 0;  // the subscription's place, or the line's number
};
std::optional<CustomerRowKey> parse_customer_row_key(std::string_view key);
// Reads a customer's rows into `row` in key order: its own row first (into an empty `row`), then
// the rows under it. DataLoss when a row cannot be read or does not fit those before it.
[[nodiscard]] absl::Status add_customer_row(CustomerRow& row, std::string_view key,
                                            std::string_view value);
// After the last of them: DataLoss unless every row its own row counts was read.
[[nodiscard]] absl::Status check_customer_rows(const CustomerRow& row);
// The start of the invoice row keys of every invoice id beginning with `invoice_id_prefix`.
std::string invoice_rows_prefix(std::string_view invoice_id_prefix);

// True when a stored meta row is of kProjectionFormat (rows of another format are rebuilt).
bool meta_row_current(std::string_view meta_value);

std::string encode_meta_row(uint64_t last_seq, const std::string& chain_head, Date clock,
                            uint64_t events_applied, uint64_t invoices_issued,
                            uint64_t subscriptions);

std::string encode_invoice_row(const IssuedInvoice& issued);
std::optional<IssuedInvoice> decode_invoice_row(std::string_view value);
std::optional<Subscription> decode_subscription_row(std::string_view value);

}  // namespace subledger
