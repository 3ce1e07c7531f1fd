// safetensors files (https://github.com/huggingface/safetensors), without libtorch.
//
// A file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data buffer.
// The JSON maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the data buffer) and the optional "__metadata__" key to a string->string object.
//
// Everything here refuses a bad file or bad arguments with tune::UserError: one line that starts
// with the file name, says what is wrong, and what to do. Reading a hostile file never allocates
// more than a small multiple of its header size, which is itself capped at kMaxHeaderBytes.
// Tensor data is assumed little-endian, as the format and every host tune runs on are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tune::safetensors {

// The dtypes tune reads and writes. The format defines more (U16, U32, U64, F8_*); a file that
// uses them is refused by name, since libtorch 1.13 has no matching tensor type.
enum class Dtype { kBool, kU8, kI8, kI16, kI32, kI64, kF16, kBF16, kF32, kF64 };

// The file's spelling: "BOOL", "U8", ..., "BF16", "F32".
std::string_view DtypeName(Dtype dtype);
// Bytes per element: 1 for BOOL/U8/I8, 2 for I16/F16/BF16, 4 for I32/F32, 8 for I64/F64.
size_t DtypeSize(Dtype dtype);

// `name` in single quotes for a one-line message: control bytes, quotes and backslashes escaped,
// a very long name shortened. Names in files are arbitrary UTF-8.
std::string QuoteName(std::string_view name);

// The header's largest accepted length, as in the reference implementation: a header is a few
// hundred bytes per tensor, so anything larger is corruption, not a model.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct TensorInfo {
  std::string name;
  Dtype dtype;
  std::vector<int64_t> shape;  // every dimension >= 0; {} is a scalar
  uint64_t offset_bytes;       // from the start of the data buffer
  uint64_t size_bytes;         // == element count * DtypeSize(dtype)
};

struct Header {
  // Sorted by offset_bytes (at one offset, empty tensors first, then by name). They cover the
  // data buffer exactly: no gaps, no overlaps, no trailing bytes. The JSON's key order carries
  // no meaning and is not kept.
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"; empty when absent
  uint64_t data_offset_bytes;                   // 8 + N: where the data buffer starts in the file
};

// Parses and validates the header of a whole file held in `file_bytes`. `file_name` only starts
// the error messages. After it returns, every tensor's bytes lie inside `file_bytes`.
Header ParseHeader(std::span<const std::byte> file_bytes, const std::string& file_name);

// An open, validated safetensors file, mapped into memory.
//
// The mapping is private and copy-on-write (PROT_READ|PROT_WRITE, MAP_PRIVATE, MAP_NORESERVE):
// writing into Bytes() of a tensor (through a zero-copy torch tensor, say) changes this process's
// copy of those pages only, never the file, and is seen by every later reader of this File.
// A file that another process truncates while it is mapped makes reads of the lost pages crash
// (SIGBUS); tune's own Write never does that, as it replaces files by rename.
//
// Every member is const; any number of threads may use one File. It is unmapped when the last
// shared_ptr to it (including those held by tensors made from it) goes away.
class File {
 public:
  // Refuses a missing, unreadable or non-regular file, and anything ParseHeader refuses.
  static std::shared_ptr<const File> Open(const std::filesystem::path& path);

  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const Header& header() const { return header_; }
  // nullptr if the file holds no tensor of that name. The pointer lives as long as the File.
  const TensorInfo* Find(std::string_view name) const;
  // The tensor's bytes inside the mapping. `info` must come from this file's header();
  // std::out_of_range if its range does not lie inside the data buffer.
  std::span<const std::byte> Bytes(const TensorInfo& info) const;
  // Gives back the memory of the whole pages inside the tensor's bytes (madvise MADV_DONTNEED):
  // the next access reads them from the file again. Anything written into those pages through a
  // view of this File is lost, so call it only for bytes that were read and not written, such as
  // weights just copied to their parameters. Loading a model this way keeps host memory near one
  // tensor's size rather than growing to the whole file.
  void Evict(const TensorInfo& info) const;

 private:
  File(std::filesystem::path path, std::byte* mapping, size_t size_bytes, Header header);

  std::filesystem::path path_;
  std::byte* mapping_;  // nullptr for an empty file, which never parses
  size_t size_bytes_;
  Header header_;
  std::unordered_map<std::string_view, const TensorInfo*> by_name_;  // views into header_
};

struct TensorToWrite {
  std::string name;
  Dtype dtype;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;  // exactly element count * DtypeSize(dtype) bytes
};

// Writes `tensors` to `path` in the given order, with `metadata` as "__metadata__" (omitted when
// empty) and the header padded with spaces so that the data buffer starts 8-byte aligned.
//
// Atomic and durable: the bytes go to a temporary file in the same folder, which is fsync'd and
// then renamed over `path` (and the folder fsync'd), so `path` holds either its old content or
// the whole new file, never part of one. Refuses duplicate or reserved ("__metadata__") names,
// negative dimensions and data whose size does not match shape and dtype, before writing
// anything.
void Write(const std::filesystem::path& path, std::span<const TensorToWrite> tensors,
           const std::map<std::string, std::string>& metadata);

}  // namespace tune::safetensors
