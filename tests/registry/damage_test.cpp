// A registry whose files were damaged under it (a flipped byte, a cut log, a lost file) says so
// and refuses to act on what is left, rather than answering from it.
#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "registry/local_registry.h"
#include "registry/registry_test_util.h"
#include "support/test_support.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using Mode = Registry::OpenMode;
using testing::MakeArtifact;
using testing::SampleRecord;

class RegistryDamage : public ::testing::Test {
 protected:
  fs::path RegistryDir() const { return dir_.path() / "registry"; }
  std::unique_ptr<LocalRegistry> Open(Mode mode = Mode::kCreate) {
    return LocalRegistry::Open(RegistryDir(), mode);
  }
  fs::path Artifact(const std::string& weights) {
    return MakeArtifact(dir_.path() / ("artifact-" + std::to_string(++artifacts_)), weights);
  }

  // The table files of one column family, oldest first, as RocksDB lists them.
  std::vector<fs::path> TablesOf(const std::string& column) const {
    const std::string db_dir = (RegistryDir() / "db").string();
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), db_dir, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> columns;
    for (const std::string& name : names)
      columns.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    EXPECT_TRUE(
        rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), db_dir, columns, &handles, &db).ok());
    std::vector<rocksdb::LiveFileMetaData> files;
    db->GetLiveFilesMetaData(&files);
    std::vector<fs::path> tables;
    std::sort(files.begin(), files.end(),
              [](const auto& a, const auto& b) { return a.file_number < b.file_number; });
    for (const rocksdb::LiveFileMetaData& file : files) {
      if (file.column_family_name == column)
        tables.push_back(RegistryDir() / "db" / file.name.substr(1));
    }
    for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
    delete db;
    return tables;
  }

  static void FlipByte(const fs::path& file, size_t offset) {
    std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
    stream.seekg(static_cast<std::streamoff>(offset));
    char byte = 0;
    stream.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x40);
    stream.seekp(static_cast<std::streamoff>(offset));
    stream.write(&byte, 1);
  }

  static size_t CountFiles(const fs::path& dir) {
    size_t count = 0;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
      count += entry.is_regular_file();
    return count;
  }

  testing::TempDir dir_;
  int artifacts_ = 0;
};

// One flipped byte in an older table of the versions: RocksDB's scan skipped that table without
// an error, so `ls` listed fewer versions and gc removed the objects of the hidden ones.
TEST_F(RegistryDamage, AFlippedByteInATableStopsListingAndGcAndVerifyNamesIt) {
  {
    auto writer = Open();
    for (int i = 0; i < 5; ++i)
      writer->Register("rank", SampleRecord(), Artifact("w" + std::to_string(i)));
  }
  {
    auto writer = Open();  // leaves every version in a table, several tables
    writer->Register("other", SampleRecord(), Artifact("other"));
  }
  const std::vector<fs::path> tables = TablesOf("versions");
  ASSERT_GE(tables.size(), 2u) << "the test needs the versions in several tables";
  FlipByte(tables.front(), fs::file_size(tables.front()) / 3);

  auto registry = Open(Mode::kReadWrite);
  const size_t objects = CountFiles(RegistryDir() / "objects");
  try {
    registry->List();
    FAIL() << "listed a damaged registry";
  } catch (const RegistryDamaged& e) {
    EXPECT_NE(std::string(e.what()).find("registry " + RegistryDir().string() + " is damaged: "),
              std::string::npos)
        << e.what();
  }
  try {
    registry->Gc(std::chrono::seconds(0));
    FAIL() << "gc ran on a damaged registry";
  } catch (const RegistryDamaged& e) {
    EXPECT_NE(std::string(e.what()).find("garbage collection was refused, nothing was changed: "
                                         "run `tune registry verify`"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(CountFiles(RegistryDir() / "objects"), objects);
  const VerifyReport report = registry->Verify();
  ASSERT_FALSE(report.problems.empty());
  EXPECT_NE(report.problems[0].find("a table of its database fails its checksum"),
            std::string::npos)
      << report.problems[0];
}

// The log's tail cut after a promote returned: before, the promote was gone and verify said
// sound. Reads and writes now refuse, verify names it, and recover keeps what is whole.
TEST_F(RegistryDamage, ACutLogTailIsDamageUntilRecoverAcceptsTheLoss) {
  {
    auto writer = Open();
    writer->Register("rank", SampleRecord(), Artifact("1"));
    writer->Register("rank", SampleRecord(), Artifact("2"));
    writer->MoveAlias("rank", "canary", 2);
  }
  fs::path newest;
  for (const auto& entry : fs::directory_iterator(RegistryDir() / "db")) {
    if (entry.path().extension() == ".log" && fs::file_size(entry.path()) > 0 &&
        (newest.empty() || entry.path().filename() > newest.filename())) {
      newest = entry.path();
    }
  }
  ASSERT_FALSE(newest.empty());
  fs::resize_file(newest, fs::file_size(newest) - 20);

  auto registry = Open(Mode::kReadWrite);
  EXPECT_THROW(registry->Resolve("rank@canary"), RegistryDamaged);
  EXPECT_THROW(registry->MoveAlias("rank", "production", 1), RegistryDamaged);
  const VerifyReport report = registry->Verify();
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("returned (db/LAST_WRITE.seq): its log lost the writes in "
                                    "between; run `tune registry verify`, then restore it from "
                                    "a backup or run `tune registry recover`"),
            std::string::npos)
      << report.problems[0];

  const std::string recovered = LocalRegistry::Recover(RegistryDir());
  EXPECT_EQ(recovered.rfind("recovered registry " + RegistryDir().string() + " up to write ", 0),
            0u)
      << recovered;
  auto after = Open(Mode::kReadWrite);
  EXPECT_EQ(after->Resolve("rank").version, 2);
  EXPECT_TRUE(after->Aliases("rank").empty());  // the promote was in the lost tail
  EXPECT_EQ(after->MoveAlias("rank", "canary", 2), 0);
  EXPECT_TRUE(after->Verify().problems.empty());
  EXPECT_EQ(LocalRegistry::Recover(RegistryDir()).find("nothing was lost") != std::string::npos,
            true);
}

TEST_F(RegistryDamage, AMissingCurrentFileIsNamedAsDamage) {
  Open()->Register("rank", SampleRecord(), Artifact("1"));
  fs::remove(RegistryDir() / "db" / "CURRENT");
  try {
    Open(Mode::kReadOnly);
    FAIL() << "opened a registry without db/CURRENT";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "registry at " + RegistryDir().string() +
                  " is damaged: db/CURRENT, which names the database's current manifest, is "
                  "missing; restore the registry from a backup (`tune registry backup` makes one)");
  }
}

// Each write is its own open, which flushes the last writer's log into new tables; keys that only
// grow made every such table a trivial move to level 1, where they piled up (one table per
// write). The database now stays a few tables per column family.
TEST_F(RegistryDamage, TablesStayFewAfterManyWrites) {
  auto registry = Open();
  for (int i = 1; i <= 60; ++i) {
    VersionRecord record = SampleRecord();
    record.run_id = std::to_string(i);  // another run each time: a new version of the same bytes
    registry->Register("rank", record, Artifact("same bytes"));
    registry->MoveAlias("rank", "production", i);
  }
  size_t tables = 0;
  for (const auto& entry : fs::directory_iterator(RegistryDir() / "db")) {
    tables += entry.path().extension() == ".sst";
  }
  // At most seven per column family written here (adapters, versions, aliases, alias_history)
  // before the next write compacts it, and the schema's one: 60 or more before.
  EXPECT_LE(tables, 29u);
  EXPECT_EQ(registry->List().size(), 60u);
}

}  // namespace
}  // namespace tune
