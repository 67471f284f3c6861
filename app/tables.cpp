#include "app/tables.h"

namespace subledger::cli {

namespace {

using Kind = Column::Kind;

Column text(std::string header, std::string path) { return Column{header, path}; }
Column number(std::string header, std::string path) { return Column{header, path, Kind::kNumber}; }
Column money(std::string header, std::string path, bool summed = false) {
  return Column{header, path, Kind::kMoney, summed};
}
// Tables show the currency beside each amount; a CSV file has it in a column of its own.
Column csv_only(Column c) {
  c.in_table = false;
  return c;
}

}  // namespace

View invoice_view() {
  Column lines{"lines", "/lines", Kind::kCount};
  Column currency = csv_only(text("currency", "/currency"));
  return View{{text("invoice", "/invoice_id"), text("date", "/invoice_date"),
               text("partner", "/partner_id"), text("customer", "/customer_id"), currency, lines,
               money("total", "/total", true)}};
}

View renewal_view() {
  return View{{text("subscription", "/subscription_id"), text("customer", "/customer_id"),
               text("offer", "/offer_id"), text("term end", "/term_end"),
               text("auto-renew", "/auto_renew"), number("seats", "/seats"),
               text("billing", "/billing_frequency"), money("current price", "/current_price"),
               money("renewal price", "/renewal_price"), csv_only(text("currency", "/currency"))}};
}

View event_view() {
  return View{{number("seq", "/seq"), text("type", "/type"), text("stream", "/stream"),
               number("version", "/stream_version"), text("effective", "/effective_date"),
               text("actor", "/actor"), text("request", "/request_id")}};
}

View explain_view(const std::string& currency) {
  View view{{number("line", "/line"), text("subscription", "/subscription_id"),
             text("charge type", "/charge_type"), text("from", "/period_start"),
             text("to", "/period_end"), text("formula", "/computation/formula"),
             number("seats", "/computation/seats"), text("price", "/computation/price"),
             number("caused by", "/caused_by/seq"), money("amount", "/amount", true)}};
  view.currency = currency;
  return view;
}

View customer_view() {
  return View{{text("customer", "/customer_id"), text("partner", "/partner_id"),
               text("country", "/country"), text("currency", "/currency"),
               text("company", "/company_name")}};
}

View subscription_view() {
  Column currency = csv_only(text("currency", "/currency"));
  return View{{text("subscription", "/subscription_id"), text("customer", "/customer_id"),
               text("offer", "/offer_id"), text("status", "/status"), number("seats", "/seats"),
               text("billing", "/billing_frequency"), text("term end", "/term_end"),
               text("auto-renew", "/auto_renew"), money("monthly price", "/locked_price"),
               currency}};
}

View trial_view() {
  return View{{text("subscription", "/subscription_id"), text("customer", "/customer_id"),
               text("offer", "/offer_id"), number("seats", "/seats"),
               text("trial ends", "/trial_end")}};
}

View offer_view() {
  return View{{text("offer", "/offer_id"), text("name", "/name"), text("segment", "/segment"),
               text("trial", "/trial_eligible"), text("add-on of", "/addon_of"),
               number("max seats", "/max_seats"), number("max per customer", "/max_per_customer")}};
}

View price_view() {
  Column currency = csv_only(text("currency", "/currency"));
  return View{{text("offer", "/offer_id"), money("monthly price", "/monthly_price"), currency,
               text("effective from", "/effective_from")}};
}

View summary_view(const std::string& group_member, const std::string& group_header) {
  Column currency = csv_only(text("currency", "/currency"));
  return View{{text(group_header, "/" + group_member), currency, number("invoices", "/invoices"),
               money("gross", "/gross"), money("credits", "/credits"), money("net", "/net")}};
}

}  // namespace subledger::cli
