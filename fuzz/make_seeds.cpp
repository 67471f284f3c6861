// Writes the seed corpora of the fuzz targets from the acceptance scenarios.
//
//   fuzz_make_seeds SUBLEDGER_BIN OUT_DIR SCENARIO_DIR...
//
// command/: every non-blank line of every scenario command file (*.jsonl, not *.expected-*).
// event/ and rows/: each scenario is applied with SUBLEDGER_BIN to a scratch ledger, and every
// stored value that decodes as an event (its message, without the hash trailer that fuzz_event
// appends itself) or as a projection row is written out. Values are found by decoding, not by
// key layout, so the storage layout can change without touching this. Files are named by the
// SHA-256 of their content (duplicates collapse). A missing scenario directory is skipped.
#include <rocksdb/db.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "events/codec.h"
#include "events/hash.h"
#include "projections/row_codec.h"

namespace fs = std::filesystem;
using namespace subledger;

namespace {

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

int written = 0;
void write_seed(const fs::path& dir, std::string_view bytes) {
  std::ofstream(dir / hex(sha256(bytes)).substr(0, 16), std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ++written;
}

std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool is_row(std::string_view v) {
  if (auto s = decode_subscription(v); s && !s->id.empty()) return true;
  if (auto c = decode_customer(v); c && !c->customer.def.customer_id.empty()) return true;
  if (auto i = decode_issued_invoice(v); i && !i->invoice.invoice_id.empty()) return true;
  if (auto l = decode_charge_line(v); l && !l->subscription_id.empty()) return true;
  return false;
}

// Every value of every column family of the ledger in `dir`.
void dump_values(const fs::path& dir, const fs::path& out) {
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.string(), &names);
  if (!s.ok()) {
    std::cerr << "make_seeds: " << dir << ": " << s.ToString() << "\n";
    return;
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir.string(), descriptors, &handles, &raw);
  if (!s.ok()) {
    std::cerr << "make_seeds: " << dir << ": " << s.ToString() << "\n";
    return;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  EventDecoder decoder;
  for (auto* h : handles) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view v(it->value().data(), it->value().size());
      Event e;
      if (decoder.decode(v, e).ok())
        write_seed(out / "event", v.substr(0, v.size() - kEventHashBytes));
      else if (is_row(v))
        write_seed(out / "rows", v);
    }
    db->DestroyColumnFamilyHandle(h);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: fuzz_make_seeds SUBLEDGER_BIN OUT_DIR SCENARIO_DIR...\n";
    return 2;
  }
  std::string bin = argv[1];
  fs::path out = argv[2];
  fs::remove_all(out);
  for (const char* sub : {"command", "event", "rows", "ledgers"}) fs::create_directories(out / sub);
  int ledgers = 0;
  for (int i = 3; i < argc; ++i) {
    fs::path dir = argv[i];
    if (!fs::is_directory(dir)) {
      std::cerr << "make_seeds: no scenario directory " << dir << ": skipped\n";
      continue;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (entry.path().extension() == ".jsonl" && name.find(".expected") == std::string::npos)
        files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      for (std::string line; std::getline(in, line);)
        if (!line.empty()) write_seed(out / "command", line);
      fs::path ledger = out / "ledgers" / std::to_string(ledgers++);
      // Rejections (exit 1) are expected in some scenarios; the values written still count.
      std::string cmd = shell_quoted(bin) + " --db " + shell_quoted(ledger.string()) + " apply " +
                        shell_quoted(file.string()) + " >/dev/null 2>&1";
      int rc = std::system(cmd.c_str());
      if (!WIFEXITED(rc) || WEXITSTATUS(rc) > 1)
        std::cerr << "make_seeds: " << cmd << " failed (status " << rc << "); continuing\n";
      dump_values(ledger, out);
    }
  }
  fs::remove_all(out / "ledgers");
  std::cout << "make_seeds: " << written << " seed files from " << ledgers << " scenarios\n";
  return 0;
}
