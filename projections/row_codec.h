// Row codec: Subscription, Customer (with pending lines) and issued-invoice rows as packed Cap'n
// Proto messages (projections/rows.capnp). The generated types stay inside row_codec.cpp.
// Pure functions; decoders return nullopt for bytes that are not such a row. Safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "projections/catalog.h"
#include "projections/ledger_state.h"

namespace subledger {

std::string encode_subscription(const Subscription& sub);
std::optional<Subscription> decode_subscription(std::string_view bytes);

std::string encode_issued_invoice(const IssuedInvoice& issued);
std::optional<IssuedInvoice> decode_issued_invoice(std::string_view bytes);

// CustomerRow: projections/ledger_state.h.
std::string encode_customer(const Customer& customer, uint64_t version,
                            const std::vector<ChargeLine>* pending);
std::optional<CustomerRow> decode_customer(std::string_view bytes);

}  // namespace subledger
