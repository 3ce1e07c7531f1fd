#include "safetensors/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace tune::safetensors {
namespace fs = std::filesystem;

namespace {

using json = nlohmann::json;

constexpr std::array<std::pair<Dtype, std::string_view>, 10> kDtypes = {{
    {Dtype::kBool, "BOOL"},
    {Dtype::kU8, "U8"},
    {Dtype::kI8, "I8"},
    {Dtype::kI16, "I16"},
    {Dtype::kI32, "I32"},
    {Dtype::kI64, "I64"},
    {Dtype::kF16, "F16"},
    {Dtype::kBF16, "BF16"},
    {Dtype::kF32, "F32"},
    {Dtype::kF64, "F64"},
}};

constexpr std::string_view kMetadataKey = "__metadata__";
constexpr std::string_view kCorrupt = "; the file is corrupt: re-download or re-export it";
constexpr std::string_view kNotSafetensors =
    "; the file is truncated, corrupt or not a safetensors file";

// A safetensors header never nests deeper than the numbers inside "shape" (object -> entry ->
// array -> number). Refusing deeper input early keeps a hostile header from building a deep DOM.
constexpr int kMaxJsonDepth = 3;

// Joins strings and numbers. Messages are built by appending, never "literal" + std::string:
// GCC 12 warns falsely about that (-Wrestrict, PR105329) at -O3.
template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  const auto append = [&out](const auto& part) {
    if constexpr (std::is_arithmetic_v<std::decay_t<decltype(part)>>) {
      out += std::to_string(part);
    } else {
      out += std::string_view(part);
    }
  };
  (append(parts), ...);
  return out;
}

template <typename... Parts>
[[noreturn]] void Refuse(const std::string& file_name, const Parts&... problem) {
  throw UserError(Cat(file_name, ": ", problem...));
}

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// `text` safe to show on one line: control bytes escaped (and, for a name between single quotes,
// quotes and backslashes too, so the name reads back unambiguously), and shortened to about
// `max_bytes` on a UTF-8 character boundary.
std::string Printable(std::string_view text, size_t max_bytes, bool is_name) {
  size_t shown = text.size();
  if (shown > max_bytes) {
    shown = max_bytes;
    while (shown > 0 && (static_cast<unsigned char>(text[shown]) & 0xC0) == 0x80) --shown;
  }
  std::string out;
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F || (is_name && (c == '\\' || c == '\''))) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown < text.size()) out += "...";
  return out;
}

std::string Quoted(std::string_view text) {
  constexpr size_t kMaxShownBytes = 120;
  return Cat("'", Printable(text, kMaxShownBytes, /*is_name=*/true), "'");
}

std::string FormatShape(std::span<const int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

std::string FormatRange(uint64_t begin, uint64_t end) { return Cat("[", begin, ", ", end, "]"); }

// A JSON value as it appeared, shortened and made safe for a one-line message.
std::string ShowJson(const json& value) {
  return Quoted(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::optional<Dtype> DtypeFromName(std::string_view name) {
  for (const auto& [dtype, dtype_name] : kDtypes) {
    if (dtype_name == name) return dtype;
  }
  return std::nullopt;
}

std::string SupportedDtypes() {
  std::string out;
  for (const auto& [dtype, name] : kDtypes) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// Element count times element size, or nullopt if either overflows 64 bits. A zero dimension
// makes the tensor empty whatever the others are, as in torch.
std::optional<uint64_t> ByteSize(std::span<const int64_t> shape, Dtype dtype) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  uint64_t bytes = DtypeSize(dtype);
  for (const int64_t dim : shape) {
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes)) return std::nullopt;
  }
  return bytes;
}

uint64_t ReadLittleEndian64(const std::byte* bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  return value;
}

std::optional<uint64_t> NonNegativeInteger(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

// Parses the header text, refusing duplicate keys (which nlohmann::json would silently collapse
// to the last one) and nesting deeper than a safetensors header has.
json ParseJson(std::string_view text, const std::string& file_name) {
  struct OpenObject {
    std::unordered_set<std::string> keys;
    std::string last_key;
  };
  std::vector<OpenObject> open_objects;
  const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth) {
      Refuse(file_name, "header nests JSON deeper than a safetensors header does", kNotSafetensors);
    }
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        OpenObject& object = open_objects.back();
        std::string key = parsed.get<std::string>();
        if (!object.keys.insert(key).second) {
          if (open_objects.size() == 1 && key == kMetadataKey) {
            Refuse(file_name, "header has two __metadata__ entries", kCorrupt);
          } else if (open_objects.size() == 1) {
            Refuse(file_name, "tensor ", Quoted(key), " appears twice in the header", kCorrupt);
          } else if (open_objects.size() == 2 && open_objects[0].last_key == kMetadataKey) {
            Refuse(file_name, "__metadata__ has key ", Quoted(key), " twice", kCorrupt);
          } else if (open_objects.size() == 2) {
            Refuse(file_name, "tensor ", Quoted(open_objects[0].last_key), " has key ", Quoted(key),
                   " twice", kCorrupt);
          }
          Refuse(file_name, "header repeats the key ", Quoted(key), kCorrupt);
        }
        object.last_key = std::move(key);
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, ..." without the bracketed id.
    std::string_view detail = e.what();
    if (const size_t id_end = detail.find("] "); id_end != std::string_view::npos) {
      detail.remove_prefix(id_end + 2);
    }
    constexpr size_t kMaxShownBytes = 240;
    Refuse(file_name, "header is not valid JSON (",
           Printable(detail, kMaxShownBytes, /*is_name=*/false), ")", kNotSafetensors);
  }
}

TensorInfo ParseEntry(const std::string& name, const json& entry, const std::string& file_name) {
  const std::string tensor = Cat("tensor ", Quoted(name));
  if (!entry.is_object()) {
    Refuse(file_name, tensor, " is a JSON ", entry.type_name(),
           ", not an object with dtype, shape and data_offsets", kCorrupt);
  }
  for (const auto& [key, value] : entry.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      Refuse(file_name, tensor, " has unknown key ", Quoted(key),
             " (expected dtype, shape and data_offsets)", kCorrupt);
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) {
      Refuse(file_name, tensor, " has no '", key, "'", kCorrupt);
    }
  }

  TensorInfo info{
      .name = name, .dtype = Dtype::kU8, .shape = {}, .offset_bytes = 0, .size_bytes = 0};
  const json& dtype = entry.at("dtype");
  if (!dtype.is_string()) {
    Refuse(file_name, tensor, " dtype is a JSON ", dtype.type_name(), ", not a string", kCorrupt);
  }
  const std::optional<Dtype> known = DtypeFromName(dtype.get_ref<const std::string&>());
  if (!known) {
    Refuse(file_name, tensor, " has dtype ", Quoted(dtype.get_ref<const std::string&>()),
           ", which tune does not read (it reads ", SupportedDtypes(),
           "); convert the tensor to one of those");
  }
  info.dtype = *known;

  const json& shape = entry.at("shape");
  if (!shape.is_array() || !std::all_of(shape.begin(), shape.end(),
                                        [](const json& d) { return d.is_number_integer(); })) {
    Refuse(file_name, tensor, " shape ", ShowJson(shape), " is not an array of integers", kCorrupt);
  }
  info.shape.reserve(shape.size());
  for (const json& dim : shape) {
    if (dim.is_number_unsigned() &&
        dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      Refuse(file_name, tensor, " shape ", ShowJson(shape),
             " has a dimension too large for a tensor", kCorrupt);
    }
    info.shape.push_back(dim.get<int64_t>());
  }
  if (std::any_of(info.shape.begin(), info.shape.end(), [](int64_t d) { return d < 0; })) {
    Refuse(file_name, tensor, " shape ", FormatShape(info.shape), " has a negative dimension",
           kCorrupt);
  }
  const std::optional<uint64_t> size_bytes = ByteSize(info.shape, info.dtype);
  if (!size_bytes) {
    Refuse(file_name, tensor, " shape ", FormatShape(info.shape), " of ", DtypeName(info.dtype),
           " is too large: its byte size does not fit in 64 bits", kCorrupt);
  }
  info.size_bytes = *size_bytes;

  const json& offsets = entry.at("data_offsets");
  std::optional<uint64_t> begin;
  std::optional<uint64_t> end;
  if (offsets.is_array() && offsets.size() == 2) {
    begin = NonNegativeInteger(offsets[0]);
    end = NonNegativeInteger(offsets[1]);
  }
  if (!begin || !end) {
    Refuse(file_name, tensor, " data_offsets ", ShowJson(offsets),
           " are not two non-negative integers [begin, end]", kCorrupt);
  }
  if (*begin > *end) {
    Refuse(file_name, tensor, " data_offsets ", FormatRange(*begin, *end), " end before they begin",
           kCorrupt);
  }
  if (*end - *begin != info.size_bytes) {
    Refuse(file_name, tensor, " data_offsets ", FormatRange(*begin, *end),
           " do not match its shape ", FormatShape(info.shape), " of ", DtypeName(info.dtype), " (",
           info.size_bytes, " bytes)", kCorrupt);
  }
  info.offset_bytes = *begin;
  return info;
}

std::map<std::string, std::string> ParseMetadata(const json& metadata,
                                                 const std::string& file_name) {
  if (!metadata.is_object()) {
    Refuse(file_name, "__metadata__ is a JSON ", metadata.type_name(), ", not an object of strings",
           kCorrupt);
  }
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : metadata.items()) {
    if (!value.is_string()) {
      Refuse(file_name, "__metadata__ ", Quoted(key), " is a JSON ", value.type_name(),
             ", not a string", kCorrupt);
    }
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

// Refuses tensors whose bytes leave the data buffer, overlap, or leave bytes no tensor owns.
void CheckLayout(const std::vector<TensorInfo>& sorted, uint64_t data_size_bytes,
                 const std::string& file_name) {
  for (const TensorInfo& info : sorted) {
    const uint64_t end = info.offset_bytes + info.size_bytes;
    if (end > data_size_bytes) {
      Refuse(file_name, "tensor ", Quoted(info.name), " data_offsets ",
             FormatRange(info.offset_bytes, end), " run past the end of the ", data_size_bytes,
             "-byte data buffer", kNotSafetensors);
    }
  }
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& info : sorted) {
    if (info.offset_bytes < covered) {
      Refuse(file_name, "tensors ", Quoted(previous->name), " ",
             FormatRange(previous->offset_bytes, previous->offset_bytes + previous->size_bytes),
             " and ", Quoted(info.name), " ",
             FormatRange(info.offset_bytes, info.offset_bytes + info.size_bytes), " overlap",
             kCorrupt);
    }
    if (info.offset_bytes > covered) {
      Refuse(file_name, "bytes ", FormatRange(covered, info.offset_bytes),
             " of the data buffer belong to no tensor (they come before ", Quoted(info.name), ")",
             kCorrupt);
    }
    covered = info.offset_bytes + info.size_bytes;
    previous = &info;
  }
  if (covered != data_size_bytes) {
    Refuse(file_name, "bytes ", FormatRange(covered, data_size_bytes),
           " at the end of the data buffer belong to no tensor", kCorrupt);
  }
}

// Closes a file descriptor on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  // Closes now, reporting the error a deferred write may only surface here.
  int Close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

void WriteAll(int fd, std::span<const std::byte> bytes, const std::string& file_name) {
  // Linux writes at most about 2 GiB per call; larger tensors go in several.
  constexpr size_t kMaxChunkBytes = size_t{1} << 30;
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), std::min(bytes.size(), kMaxChunkBytes));
    if (written < 0) {
      if (errno == EINTR) continue;
      Refuse(file_name, "cannot write: ", ErrnoText(errno),
             "; check that the folder is writable and has free space");
    }
    bytes = bytes.subspan(static_cast<size_t>(written));
  }
}

}  // namespace

std::string QuoteName(std::string_view name) { return Quoted(name); }

std::string_view DtypeName(Dtype dtype) {
  for (const auto& [candidate, name] : kDtypes) {
    if (candidate == dtype) return name;
  }
  throw std::invalid_argument("safetensors::DtypeName: not a Dtype");
}

size_t DtypeSize(Dtype dtype) {
  switch (dtype) {
    case Dtype::kBool:
    case Dtype::kU8:
    case Dtype::kI8:
      return 1;
    case Dtype::kI16:
    case Dtype::kF16:
    case Dtype::kBF16:
      return 2;
    case Dtype::kI32:
    case Dtype::kF32:
      return 4;
    case Dtype::kI64:
    case Dtype::kF64:
      return 8;
  }
  throw std::invalid_argument("safetensors::DtypeSize: not a Dtype");
}

Header ParseHeader(std::span<const std::byte> file_bytes, const std::string& file_name) {
  if (file_bytes.size() < 8) {
    Refuse(file_name, "is ", file_bytes.size(),
           " bytes long, too short for the 8-byte header length a safetensors "
           "file starts with",
           kNotSafetensors);
  }
  const uint64_t header_size = ReadLittleEndian64(file_bytes.data());
  if (header_size > kMaxHeaderBytes) {
    Refuse(file_name, "header length ", header_size, " bytes is over the ", kMaxHeaderBytes,
           "-byte limit", kNotSafetensors);
  }
  if (header_size > file_bytes.size() - 8) {
    Refuse(file_name, "header length ", header_size, " bytes runs past the end of the file (",
           file_bytes.size() - 8, " bytes follow the length field)", kNotSafetensors);
  }

  const std::string_view text(reinterpret_cast<const char*>(file_bytes.data() + 8), header_size);
  const json root = ParseJson(text, file_name);
  if (!root.is_object()) {
    Refuse(file_name, "header is a JSON ", root.type_name(), ", not an object", kNotSafetensors);
  }

  Header header;
  header.data_offset_bytes = 8 + header_size;
  header.tensors.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    if (key == kMetadataKey) {
      header.metadata = ParseMetadata(value, file_name);
    } else {
      header.tensors.push_back(ParseEntry(key, value, file_name));
    }
  }
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) {
              return std::tie(a.offset_bytes, a.size_bytes, a.name) <
                     std::tie(b.offset_bytes, b.size_bytes, b.name);
            });
  CheckLayout(header.tensors, file_bytes.size() - header.data_offset_bytes, file_name);
  return header;
}

File::File(fs::path path, std::byte* mapping, size_t size_bytes, Header header)
    : path_(std::move(path)),
      mapping_(mapping),
      size_bytes_(size_bytes),
      header_(std::move(header)) {
  by_name_.reserve(header_.tensors.size());
  for (const TensorInfo& info : header_.tensors) by_name_.emplace(info.name, &info);
}

File::~File() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_bytes_);
}

std::shared_ptr<const File> File::Open(const fs::path& path) {
  const std::string file_name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Refuse(file_name, "cannot open: ", ErrnoText(errno), "; check the path and its permissions");
  }
  FdCloser closer(fd);
  struct stat status {};
  if (::fstat(fd, &status) != 0) {
    Refuse(file_name, "cannot read: ", ErrnoText(errno), "; check the path and its permissions");
  }
  if (!S_ISREG(status.st_mode)) {
    Refuse(file_name, "is not a regular file; give the path of a .safetensors file");
  }
  const auto size_bytes = static_cast<size_t>(status.st_size);
  std::byte* mapping = nullptr;
  if (size_bytes > 0) {
    // Copy-on-write and writable, so an in-place op on a zero-copy tensor changes this process's
    // pages instead of crashing. NORESERVE: a writable private mapping would otherwise count
    // against the commit limit in full, and a model larger than RAM could not be mapped at all.
    void* address =
        ::mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    if (address == MAP_FAILED) {
      Refuse(file_name, "cannot map into memory: ", ErrnoText(errno),
             "; check that the file is readable and address space is available");
    }
    mapping = static_cast<std::byte*>(address);
  }
  // Owns the mapping until a File does; the descriptor can close, the mapping stays valid.
  struct Unmapper {
    std::byte* mapping;
    size_t size_bytes;
    ~Unmapper() {
      if (mapping != nullptr) ::munmap(mapping, size_bytes);
    }
  } unmapper{mapping, size_bytes};
  Header header = ParseHeader({mapping, size_bytes}, file_name);
  std::shared_ptr<const File> file(new File(path, mapping, size_bytes, std::move(header)));
  unmapper.mapping = nullptr;
  return file;
}

const TensorInfo* File::Find(std::string_view name) const {
  const auto found = by_name_.find(name);
  return found == by_name_.end() ? nullptr : found->second;
}

std::span<const std::byte> File::Bytes(const TensorInfo& info) const {
  const uint64_t data_size_bytes = size_bytes_ - header_.data_offset_bytes;
  if (info.offset_bytes > data_size_bytes ||
      info.size_bytes > data_size_bytes - info.offset_bytes) {
    throw std::out_of_range(Cat("safetensors::File::Bytes: tensor ", Quoted(info.name),
                                " is not inside ", path_.string()));
  }
  return {mapping_ + header_.data_offset_bytes + info.offset_bytes, info.size_bytes};
}

void File::Evict(const TensorInfo& info) const {
  const std::span<const std::byte> bytes = Bytes(info);
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(bytes.data());
  const uintptr_t first = (begin + page - 1) / page * page;     // pages wholly inside only:
  const uintptr_t last = (begin + bytes.size()) / page * page;  // neighbours keep theirs
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void Write(const fs::path& path, std::span<const TensorToWrite> tensors,
           const std::map<std::string, std::string>& metadata) {
  const std::string file_name = path.string();

  // Everything is checked and the header built before the first byte is written.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  std::unordered_set<std::string_view> names;
  uint64_t offset_bytes = 0;
  for (const TensorToWrite& tensor : tensors) {
    const std::string quoted = Cat("tensor ", Quoted(tensor.name));
    if (tensor.name == kMetadataKey) {
      Refuse(file_name,
             "cannot hold a tensor named '__metadata__', which the format reserves; "
             "rename the tensor");
    }
    if (!names.insert(tensor.name).second) {
      Refuse(file_name, quoted, " is given twice; give each tensor a different name");
    }
    if (std::any_of(tensor.shape.begin(), tensor.shape.end(), [](int64_t d) { return d < 0; })) {
      Refuse(file_name, quoted, " shape ", FormatShape(tensor.shape),
             " has a negative dimension; pass the tensor's real shape");
    }
    const std::optional<uint64_t> size_bytes = ByteSize(tensor.shape, tensor.dtype);
    if (size_bytes != tensor.data.size()) {
      Refuse(file_name, quoted, " has ", tensor.data.size(), " bytes of data, but shape ",
             FormatShape(tensor.shape), " of ", DtypeName(tensor.dtype), " needs ",
             (size_bytes ? std::to_string(*size_bytes) : "more than 2^64"),
             "; pass data that matches the shape and dtype");
    }
    header[tensor.name] = {{"dtype", DtypeName(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset_bytes, offset_bytes + *size_bytes}}};
    offset_bytes += *size_bytes;
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::ordered_json::type_error&) {
    Refuse(file_name,
           "a tensor name or metadata string is not valid UTF-8, which the JSON header needs; "
           "rename it");
  }
  // Readers map the file and use tensors in place: with the data buffer 8-byte aligned in the
  // file (and so in a page-aligned mapping), a tensor whose offset is a multiple of its element
  // size is aligned in memory too.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  std::array<std::byte, 8> length_field{};
  for (int i = 0; i < 8; ++i) {
    length_field[i] = static_cast<std::byte>((header_text.size() >> (8 * i)) & 0xFF);
  }

  const fs::path folder = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::random_device entropy;
  fs::path temp_path;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 16; ++attempt) {
    temp_path = folder / Cat(".", path.filename().string(), ".tmp-", ::getpid(), "-", entropy());
    fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    const int error = errno;
    Refuse(file_name, "cannot create a temporary file in ", folder.string(), ": ", ErrnoText(error),
           "; check that the folder exists and is writable");
  }
  FdCloser closer(fd);
  struct TempRemover {
    const fs::path* temp_path;
    ~TempRemover() {
      if (temp_path != nullptr) ::unlink(temp_path->c_str());
    }
  } remover{&temp_path};

  WriteAll(fd, length_field, file_name);
  WriteAll(fd, std::as_bytes(std::span(header_text)), file_name);
  for (const TensorToWrite& tensor : tensors) WriteAll(fd, tensor.data, file_name);
  if (::fsync(fd) != 0 || closer.Close() != 0) {
    Refuse(file_name, "cannot write: ", ErrnoText(errno),
           "; check that the folder is writable and has free space");
  }
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    Refuse(file_name, "cannot replace: ", ErrnoText(errno),
           "; check that the path is not a folder and the folder is writable");
  }
  remover.temp_path = nullptr;

  // The rename itself is durable only once the folder is.
  const int folder_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder_fd >= 0) {
    FdCloser folder_closer(folder_fd);
    if (::fsync(folder_fd) != 0 && errno != EINVAL) {
      Refuse(file_name, "was written, but its folder could not be synced: ", ErrnoText(errno),
             "; check the disk");
    }
  }
}

}  // namespace tune::safetensors
