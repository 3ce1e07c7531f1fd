// The Jinja subset of jinja.h: the template is cut into text and tags (with jinja2's
// trim_blocks and lstrip_blocks, as transformers configures it), tags are parsed into a tree of
// nodes and expressions, and rendering walks the tree. Filters, tests and methods live in
// jinja_builtins.cpp.
#include "chat_template/jinja.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "chat_template/jinja_builtins.h"

namespace tune::jinja {

[[noreturn]] void Fail(int line, const std::string& message) {
  throw TemplateError("line " + std::to_string(line) + ": " + message);
}

namespace {

[[noreturn]] void FailLimit(int line, const std::string& message) {
  throw TemplateLimit("line " + std::to_string(line) + ": " + message);
}

// Parsing and rendering recurse once per level of nesting, so nesting is bounded rather than
// left to the stack.
std::string NestedDeeperThanTheLimit(const char* what) {
  return std::string(what) + " nested deeper than " + std::to_string(kMaxNesting) +
         " levels (tune's limit for a chat template)";
}

// --- Cutting the source into text and tags ----------------------------------------------------

enum class PartKind { kText, kOutput, kStatement };

struct Part {
  PartKind kind;
  std::string text;  // the text, or the tag's content without delimiters and '-'/'+'
  int line;
};

bool IsSpaceOrTab(char c) { return c == ' ' || c == '\t'; }
bool IsWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// The end of the tag that starts at `begin` (just after "{{" or "{%"), skipping string literals.
size_t FindTagEnd(std::string_view source, size_t begin, std::string_view close, int line) {
  char quote = 0;
  for (size_t i = begin; i < source.size(); ++i) {
    const char c = source[i];
    if (quote != 0) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (source.compare(i, close.size(), close) == 0) {
      return i;
    }
  }
  Fail(line, "a tag opened here is never closed with '" + std::string(close) + "'");
}

std::vector<Part> Cut(std::string_view source) {
  // jinja2's keep_trailing_newline=False: one newline at the very end is not part of the output.
  if (source.ends_with('\n')) source.remove_suffix(1);
  std::vector<Part> parts;
  int line = 1;
  size_t at = 0;
  bool trim_next_newline = false;  // trim_blocks after a block or comment tag
  bool strip_next = false;         // a '-' before the previous tag's end
  const auto count_lines = [&](size_t from, size_t to) {
    line += static_cast<int>(std::count(source.begin() + from, source.begin() + to, '\n'));
  };
  while (at <= source.size()) {
    size_t open = source.find('{', at);
    while (open != std::string_view::npos && open + 1 < source.size() && source[open + 1] != '{' &&
           source[open + 1] != '%' && source[open + 1] != '#') {
      open = source.find('{', open + 1);
    }
    if (open != std::string_view::npos && open + 1 >= source.size()) open = std::string_view::npos;
    const size_t text_end = open == std::string_view::npos ? source.size() : open;
    std::string text(source.substr(at, text_end - at));
    const int text_line = line;
    count_lines(at, text_end);
    if (strip_next) {
      text.erase(0, std::find_if_not(text.begin(), text.end(), IsWhitespace) - text.begin());
    } else if (trim_next_newline && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
    } else if (trim_next_newline && text.size() >= 2 && text[0] == '\r' && text[1] == '\n') {
      text.erase(0, 2);
    }
    if (open == std::string_view::npos) {
      if (!text.empty()) parts.push_back({PartKind::kText, text, text_line});
      break;
    }
    const char kind = source[open + 1];
    const char marker = open + 2 < source.size() ? source[open + 2] : '\0';
    if (marker == '-') {
      text.erase(std::find_if_not(text.rbegin(), text.rend(), IsWhitespace).base(), text.end());
    } else if (kind != '{' && marker != '+') {
      // lstrip_blocks: spaces and tabs from the start of the tag's line in the source.
      size_t blank = text_end;
      while (blank > at && IsSpaceOrTab(source[blank - 1])) --blank;
      if (blank == 0 || source[blank - 1] == '\n') {
        text.erase(text.size() - std::min(text.size(), text_end - blank));
      }
    }
    if (!text.empty()) parts.push_back({PartKind::kText, text, text_line});
    const int tag_line = line;
    const std::string_view close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    const size_t content_begin = open + 2 + ((marker == '-' || marker == '+') ? 1 : 0);
    size_t close_at;
    if (kind == '#') {
      close_at = source.find("#}", content_begin);
      if (close_at == std::string_view::npos)
        Fail(tag_line, "a comment opened here is never closed");
    } else {
      close_at = FindTagEnd(source, content_begin, close, tag_line);
    }
    const bool dash_close = close_at > content_begin && source[close_at - 1] == '-';
    const bool plus_close = close_at > content_begin && source[close_at - 1] == '+';
    const size_t content_end = (dash_close || plus_close) ? close_at - 1 : close_at;
    if (kind != '#') {
      parts.push_back({kind == '{' ? PartKind::kOutput : PartKind::kStatement,
                       std::string(source.substr(content_begin, content_end - content_begin)),
                       tag_line});
    }
    count_lines(open, close_at + 2);
    at = close_at + 2;
    strip_next = dash_close;
    trim_next_newline = kind != '{' && !plus_close;
  }
  return parts;
}

// --- Expression tokens ------------------------------------------------------------------------

enum class TokenKind { kName, kNumber, kString, kOperator, kEnd };

struct Token {
  TokenKind kind;
  std::string text;  // a name, an operator, or a string literal's decoded value
  Value number;
};

std::vector<Token> Lex(const std::string& source, int line) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < source.size()) {
    const char c = source[i];
    if (IsWhitespace(c)) {
      ++i;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < source.size() &&
             (std::isalnum(static_cast<unsigned char>(source[j])) || source[j] == '_'))
        ++j;
      tokens.push_back({TokenKind::kName, source.substr(i, j - i), {}});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < source.size() &&
             (std::isdigit(static_cast<unsigned char>(source[j])) || source[j] == '_'))
        ++j;
      if (j + 1 < source.size() && source[j] == '.' &&
          std::isdigit(static_cast<unsigned char>(source[j + 1]))) {
        is_float = true;
        ++j;
        while (j < source.size() && std::isdigit(static_cast<unsigned char>(source[j]))) ++j;
      }
      if (j < source.size() && (source[j] == 'e' || source[j] == 'E')) {
        is_float = true;
        ++j;
        if (j < source.size() && (source[j] == '+' || source[j] == '-')) ++j;
        while (j < source.size() && std::isdigit(static_cast<unsigned char>(source[j]))) ++j;
      }
      std::string digits = source.substr(i, j - i);
      std::erase(digits, '_');
      tokens.push_back(
          {TokenKind::kNumber, digits,
           is_float ? Value(std::stod(digits)) : Value(static_cast<int64_t>(std::stoll(digits)))});
      i = j;
    } else if (c == '"' || c == '\'') {
      std::string value;
      size_t j = i + 1;
      for (; j < source.size() && source[j] != c; ++j) {
        if (source[j] != '\\' || j + 1 >= source.size()) {
          value += source[j];
          continue;
        }
        const char e = source[++j];
        switch (e) {
          case 'n':
            value += '\n';
            break;
          case 't':
            value += '\t';
            break;
          case 'r':
            value += '\r';
            break;
          case '\\':
            value += '\\';
            break;
          case '\'':
            value += '\'';
            break;
          case '"':
            value += '"';
            break;
          case '\n':
            break;
          default:
            value += '\\';
            value += e;
        }
      }
      if (j >= source.size()) Fail(line, "a string literal is never closed");
      tokens.push_back({TokenKind::kString, value, {}});
      i = j + 1;
    } else {
      static const char* const kOperators[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*",
                                               "/",  "%",  "~",  "<",  ">",  "(",  ")", "[", "]",
                                               "{",  "}",  ",",  ":",  ".",  "|",  "="};
      bool matched = false;
      for (const char* op : kOperators) {
        const size_t n = std::char_traits<char>::length(op);
        if (source.compare(i, n, op) == 0) {
          tokens.push_back({TokenKind::kOperator, op, {}});
          i += n;
          matched = true;
          break;
        }
      }
      if (!matched) Fail(line, std::string("unexpected character '") + c + "'");
    }
  }
  tokens.push_back({TokenKind::kEnd, "", {}});
  return tokens;
}

}  // namespace

// --- Expressions ------------------------------------------------------------------------------

struct Expr {
  enum class Kind {
    kLiteral,
    kName,
    kAttr,
    kItem,
    kSlice,
    kCall,
    kFilter,
    kTest,
    kNot,
    kNeg,
    kBinary,
    kAnd,
    kOr,
    kConditional,
    kList,
    kDict
  };
  Kind kind;
  int line;
  Value value;                              // literal
  std::string name;                         // name, attribute, filter, test, operator
  std::vector<std::unique_ptr<Expr>> args;  // operands, call arguments, list items, dict k/v
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
  bool negated = false;  // `is not`, `not in`
  int depth = 1;         // of the tree below and including this node
};
using ExprPtr = std::unique_ptr<Expr>;

namespace {

ExprPtr MakeExpr(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

class ExprParser {
 public:
  ExprParser(std::vector<Token> tokens, int line) : tokens_(std::move(tokens)), line_(line) {}

  ExprPtr Parse() { return Conditional(); }
  bool AtEnd() const { return Peek().kind == TokenKind::kEnd; }
  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(at_ + ahead, tokens_.size() - 1)];
  }
  bool IsName(std::string_view name, size_t ahead = 0) const {
    return Peek(ahead).kind == TokenKind::kName && Peek(ahead).text == name;
  }
  bool IsOp(std::string_view op) const {
    return Peek().kind == TokenKind::kOperator && Peek().text == op;
  }
  Token Next() { return tokens_[std::min(at_++, tokens_.size() - 1)]; }
  void Expect(std::string_view op) {
    if (!IsOp(op))
      Fail(line_, "expected '" + std::string(op) + "' but found '" + Peek().text + "'");
    ++at_;
  }
  std::string ExpectName() {
    if (Peek().kind != TokenKind::kName)
      Fail(line_, "expected a name but found '" + Peek().text + "'");
    return Next().text;
  }
  void ExpectEnd() {
    if (!AtEnd()) Fail(line_, "unexpected '" + Peek().text + "'");
  }
  int line() const { return line_; }

  // `a if cond else b`, without the ternary when `allow_if` is false (a for loop's filter).
  ExprPtr Conditional(bool allow_if = true) {
    const Nested nested(*this);
    ExprPtr value = Or();
    if (!allow_if || !IsName("if")) return value;
    Next();
    auto e = MakeExpr(Expr::Kind::kConditional, line_);
    Add(*e, Or());
    Add(*e, std::move(value));
    if (IsName("else")) {
      Next();
      Add(*e, Conditional());
    }
    return e;
  }

 private:
  // Counts the nesting of the parser's calls (parentheses nest them without deepening the tree),
  // and refuses it past kMaxNesting.
  class Nested {
   public:
    explicit Nested(ExprParser& parser) : parser_(parser) {
      if (++parser_.depth_ > kMaxNesting) {
        FailLimit(parser_.line_, NestedDeeperThanTheLimit("an expression"));
      }
    }
    ~Nested() { --parser_.depth_; }

   private:
    ExprParser& parser_;
  };

  // Makes `child` (which may be null: a slice's missing bound) an operand of `parent`. The tree,
  // which rendering walks recursively, is refused past kMaxNesting: a chain such as a|f|g or
  // a.b.c deepens it by one per link while the parser itself does not nest.
  void Add(Expr& parent, ExprPtr child) {
    if (child) Deepen(parent, *child);
    parent.args.push_back(std::move(child));
  }
  void AddKeyword(Expr& call, std::string key, ExprPtr value) {
    Deepen(call, *value);
    call.kwargs.emplace_back(std::move(key), std::move(value));
  }
  void Deepen(Expr& parent, const Expr& child) {
    parent.depth = std::max(parent.depth, child.depth + 1);
    if (parent.depth > kMaxNesting) FailLimit(line_, NestedDeeperThanTheLimit("an expression"));
  }

  ExprPtr Or() {
    ExprPtr left = And();
    while (IsName("or")) {
      Next();
      auto e = MakeExpr(Expr::Kind::kOr, line_);
      Add(*e, std::move(left));
      Add(*e, And());
      left = std::move(e);
    }
    return left;
  }
  ExprPtr And() {
    ExprPtr left = Not();
    while (IsName("and")) {
      Next();
      auto e = MakeExpr(Expr::Kind::kAnd, line_);
      Add(*e, std::move(left));
      Add(*e, Not());
      left = std::move(e);
    }
    return left;
  }
  ExprPtr Not() {
    if (IsName("not")) {
      const Nested nested(*this);
      Next();
      auto e = MakeExpr(Expr::Kind::kNot, line_);
      Add(*e, Not());
      return e;
    }
    return Compare();
  }
  ExprPtr Compare() {
    ExprPtr left = Concat();
    while (true) {
      std::string op;
      bool negated = false;
      if (Peek().kind == TokenKind::kOperator &&
          (Peek().text == "==" || Peek().text == "!=" || Peek().text == "<" || Peek().text == ">" ||
           Peek().text == "<=" || Peek().text == ">=")) {
        op = Next().text;
      } else if (IsName("in")) {
        Next();
        op = "in";
      } else if (IsName("not") && IsName("in", 1)) {
        Next();
        Next();
        op = "in";
        negated = true;
      } else {
        return left;
      }
      auto e = MakeExpr(Expr::Kind::kBinary, line_);
      e->name = op;
      e->negated = negated;
      Add(*e, std::move(left));
      Add(*e, Concat());
      left = std::move(e);
    }
  }
  ExprPtr Concat() {
    ExprPtr left = Additive();
    while (IsOp("~")) {
      Next();
      auto e = MakeExpr(Expr::Kind::kBinary, line_);
      e->name = "~";
      Add(*e, std::move(left));
      Add(*e, Additive());
      left = std::move(e);
    }
    return left;
  }
  ExprPtr Additive() {
    ExprPtr left = Multiplicative();
    while (IsOp("+") || IsOp("-")) {
      auto e = MakeExpr(Expr::Kind::kBinary, line_);
      e->name = Next().text;
      Add(*e, std::move(left));
      Add(*e, Multiplicative());
      left = std::move(e);
    }
    return left;
  }
  ExprPtr Multiplicative() {
    ExprPtr left = Unary();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      auto e = MakeExpr(Expr::Kind::kBinary, line_);
      e->name = Next().text;
      Add(*e, std::move(left));
      Add(*e, Unary());
      left = std::move(e);
    }
    return left;
  }
  ExprPtr Unary() {
    if (IsOp("-")) {
      const Nested nested(*this);
      Next();
      auto e = MakeExpr(Expr::Kind::kNeg, line_);
      Add(*e, Unary());
      return e;
    }
    if (IsOp("+")) {
      const Nested nested(*this);
      Next();
      return Unary();
    }
    return FilterOrTest(Postfix(Primary()));
  }
  // Filters bind tighter than arithmetic in Jinja (`a + b | f` is a + f(b)); tests follow them.
  ExprPtr FilterOrTest(ExprPtr value) {
    while (true) {
      if (IsOp("|")) {
        Next();
        auto e = MakeExpr(Expr::Kind::kFilter, line_);
        e->name = ExpectName();
        if (!IsKnownFilter(e->name)) Fail(line_, "filter '" + e->name + "' is not supported");
        Add(*e, std::move(value));
        if (IsOp("(")) Arguments(*e);
        value = std::move(e);
      } else if (IsName("is")) {
        Next();
        auto e = MakeExpr(Expr::Kind::kTest, line_);
        if (IsName("not")) {
          Next();
          e->negated = true;
        }
        e->name = ExpectName();
        if (!IsKnownTest(e->name)) Fail(line_, "test '" + e->name + "' is not supported");
        Add(*e, std::move(value));
        if (IsOp("(")) {
          Arguments(*e);
        } else if (Peek().kind == TokenKind::kString || Peek().kind == TokenKind::kNumber ||
                   (Peek().kind == TokenKind::kName && !IsName("and") && !IsName("or") &&
                    !IsName("else") && !IsName("if") && !IsName("is") && !IsName("in") &&
                    !IsName("not"))) {
          Add(*e, Postfix(Primary()));  // `x is divisibleby 3`, `x is equalto y`
        }
        return e;
      } else {
        return value;
      }
    }
  }
  void Arguments(Expr& call) {
    Expect("(");
    while (!IsOp(")")) {
      if (Peek().kind == TokenKind::kName && Peek(1).kind == TokenKind::kOperator &&
          Peek(1).text == "=") {
        std::string key = Next().text;
        Next();
        AddKeyword(call, std::move(key), Conditional());
      } else {
        Add(call, Conditional());
      }
      if (!IsOp(",")) break;
      Next();
    }
    Expect(")");
  }
  ExprPtr Postfix(ExprPtr value) {
    while (true) {
      if (IsOp(".")) {
        Next();
        auto e = MakeExpr(Expr::Kind::kAttr, line_);
        if (Peek().kind == TokenKind::kNumber) {
          e->kind = Expr::Kind::kItem;
          auto index = MakeExpr(Expr::Kind::kLiteral, line_);
          index->value = Next().number;
          Add(*e, std::move(value));
          Add(*e, std::move(index));
        } else {
          e->name = ExpectName();
          Add(*e, std::move(value));
        }
        value = std::move(e);
      } else if (IsOp("[")) {
        Next();
        ExprPtr parts[3];
        bool slice = false;
        for (int i = 0; i < 3; ++i) {
          if (!IsOp(":") && !IsOp("]")) parts[i] = Conditional();
          if (i < 2 && IsOp(":")) {
            Next();
            slice = true;
          } else {
            break;
          }
        }
        Expect("]");
        auto e = MakeExpr(slice ? Expr::Kind::kSlice : Expr::Kind::kItem, line_);
        Add(*e, std::move(value));
        if (!slice && !parts[0]) Fail(line_, "an empty subscript []");
        for (int i = 0; i < (slice ? 3 : 1); ++i) Add(*e, std::move(parts[i]));
        value = std::move(e);
      } else if (IsOp("(")) {
        auto e = MakeExpr(Expr::Kind::kCall, line_);
        Add(*e, std::move(value));
        Arguments(*e);
        value = std::move(e);
      } else {
        return value;
      }
    }
  }
  ExprPtr Primary() {
    const Token token = Next();
    if (token.kind == TokenKind::kNumber) {
      auto e = MakeExpr(Expr::Kind::kLiteral, line_);
      e->value = token.number;
      return e;
    }
    if (token.kind == TokenKind::kString) {
      std::string text = token.text;
      while (Peek().kind == TokenKind::kString) text += Next().text;  // adjacent literals join
      auto e = MakeExpr(Expr::Kind::kLiteral, line_);
      e->value = Value(text);
      return e;
    }
    if (token.kind == TokenKind::kName) {
      auto e = MakeExpr(Expr::Kind::kLiteral, line_);
      if (token.text == "true" || token.text == "True") {
        e->value = Value(true);
      } else if (token.text == "false" || token.text == "False") {
        e->value = Value(false);
      } else if (token.text == "none" || token.text == "None") {
        e->value = Value(None{});
      } else {
        e->kind = Expr::Kind::kName;
        e->name = token.text;
      }
      return e;
    }
    if (token.kind == TokenKind::kOperator && token.text == "(") {
      ExprPtr inner = Conditional();
      if (IsOp(",")) {  // a tuple, kept as a list
        auto list = MakeExpr(Expr::Kind::kList, line_);
        Add(*list, std::move(inner));
        while (IsOp(",")) {
          Next();
          if (IsOp(")")) break;
          Add(*list, Conditional());
        }
        inner = std::move(list);
      }
      Expect(")");
      return inner;
    }
    if (token.kind == TokenKind::kOperator && token.text == "[") {
      auto e = MakeExpr(Expr::Kind::kList, line_);
      while (!IsOp("]")) {
        Add(*e, Conditional());
        if (!IsOp(",")) break;
        Next();
      }
      Expect("]");
      return e;
    }
    if (token.kind == TokenKind::kOperator && token.text == "{") {
      auto e = MakeExpr(Expr::Kind::kDict, line_);
      while (!IsOp("}")) {
        Add(*e, Conditional());
        Expect(":");
        Add(*e, Conditional());
        if (!IsOp(",")) break;
        Next();
      }
      Expect("}");
      return e;
    }
    Fail(line_, token.kind == TokenKind::kEnd ? "an expression ends too early"
                                              : "unexpected '" + token.text + "'");
  }

  std::vector<Token> tokens_;
  size_t at_ = 0;
  int line_;
  int depth_ = 0;
};

}  // namespace

// --- Statements -------------------------------------------------------------------------------

struct Template::Node {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kBlock, kBreak, kContinue };
  Kind kind;
  int line;
  std::string text;  // text
  ExprPtr expr;      // output; for's iterable; set's value
  std::vector<std::pair<ExprPtr, std::vector<std::unique_ptr<Node>>>> branches;  // if
  std::vector<std::unique_ptr<Node>> body;                                       // for, generation
  std::vector<std::unique_ptr<Node>> else_body;                                  // if, for
  std::vector<std::string> targets;  // for's names; set's name (and attribute)
  ExprPtr filter;                    // for ... if filter
};

namespace {

using Node = Template::Node;
using NodeList = std::vector<std::unique_ptr<Node>>;

class StatementParser {
 public:
  explicit StatementParser(std::vector<Part> parts) : parts_(std::move(parts)) {}

  NodeList ParseAll() {
    NodeList body;
    const std::string end = ParseBody(body, {});
    if (!end.empty()) Fail(last_line_, "'" + end + "' without its opening tag");
    return body;
  }

 private:
  // Parses nodes into `body` until a statement whose keyword is in `stops`; returns that keyword
  // (its parser is left at the statement's remaining tokens) or "" at the end of the template.
  std::string ParseBody(NodeList& body, const std::vector<std::string>& stops) {
    if (++depth_ > kMaxNesting) FailLimit(last_line_, NestedDeeperThanTheLimit("blocks"));
    const std::string end = ParseParts(body, stops);
    --depth_;
    return end;
  }

  std::string ParseParts(NodeList& body, const std::vector<std::string>& stops) {
    while (at_ < parts_.size()) {
      const Part& part = parts_[at_++];
      last_line_ = part.line;
      if (part.kind == PartKind::kText) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kText;
        node->line = part.line;
        node->text = part.text;
        body.push_back(std::move(node));
        continue;
      }
      ExprParser parser(Lex(part.text, part.line), part.line);
      if (part.kind == PartKind::kOutput) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kOutput;
        node->line = part.line;
        node->expr = parser.Parse();
        parser.ExpectEnd();
        body.push_back(std::move(node));
        continue;
      }
      const std::string keyword = parser.ExpectName();
      if (std::find(stops.begin(), stops.end(), keyword) != stops.end()) {
        current_ = std::make_unique<ExprParser>(std::move(parser));
        return keyword;
      }
      body.push_back(ParseStatement(keyword, parser, part.line));
    }
    if (!stops.empty()) {
      Fail(last_line_, "the template ends before '" + stops.back() + "'");
    }
    return "";
  }

  std::unique_ptr<Node> ParseStatement(const std::string& keyword, ExprParser& parser, int line) {
    auto node = std::make_unique<Node>();
    node->line = line;
    if (keyword == "if") {
      node->kind = Node::Kind::kIf;
      ExprPtr condition = parser.Parse();
      parser.ExpectEnd();
      while (true) {
        NodeList branch;
        const std::string end = ParseBody(branch, {"elif", "else", "endif"});
        node->branches.emplace_back(std::move(condition), std::move(branch));
        if (end == "elif") {
          condition = current_->Parse();
          current_->ExpectEnd();
          continue;
        }
        current_->ExpectEnd();
        if (end == "else") {
          if (ParseBody(node->else_body, {"endif"}).empty()) Fail(line, "if without endif");
          current_->ExpectEnd();
        }
        return node;
      }
    }
    if (keyword == "for") {
      node->kind = Node::Kind::kFor;
      node->targets.push_back(parser.ExpectName());
      while (parser.IsOp(",")) {
        parser.Next();
        node->targets.push_back(parser.ExpectName());
      }
      if (!parser.IsName("in")) Fail(line, "expected 'in' in the for tag");
      parser.Next();
      node->expr = parser.Conditional(false);
      if (parser.IsName("if")) {
        parser.Next();
        node->filter = parser.Parse();
      }
      if (parser.IsName("recursive")) Fail(line, "'for ... recursive' is not supported");
      parser.ExpectEnd();
      const std::string end = ParseBody(node->body, {"else", "endfor"});
      current_->ExpectEnd();
      if (end == "else") {
        ParseBody(node->else_body, {"endfor"});
        current_->ExpectEnd();
      }
      return node;
    }
    if (keyword == "set") {
      node->kind = Node::Kind::kSet;
      node->targets.push_back(parser.ExpectName());
      if (parser.IsOp(".")) {
        parser.Next();
        node->targets.push_back(parser.ExpectName());
      }
      if (parser.IsOp(",")) Fail(line, "'set' with several targets is not supported");
      if (!parser.IsOp("=")) Fail(line, "block 'set' (without '=') is not supported");
      parser.Next();
      node->expr = parser.Parse();
      parser.ExpectEnd();
      return node;
    }
    if (keyword == "generation") {  // transformers' marker of assistant text; renders its body
      node->kind = Node::Kind::kBlock;
      parser.ExpectEnd();
      ParseBody(node->body, {"endgeneration"});
      current_->ExpectEnd();
      return node;
    }
    if (keyword.starts_with("end") || keyword == "elif" || keyword == "else") {
      Fail(line, "'" + keyword + "' without its opening tag");
    }
    if (keyword == "break" || keyword == "continue") {
      node->kind = keyword == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      parser.ExpectEnd();
      return node;
    }
    Fail(line, "'{% " + keyword +
                   " %}' is not supported (tune renders if, for, set, "
                   "generation, break and continue)");
  }

  std::vector<Part> parts_;
  size_t at_ = 0;
  int last_line_ = 1;
  int depth_ = 0;
  std::unique_ptr<ExprParser> current_;  // the parser of the statement that ended a body
};

// --- Rendering --------------------------------------------------------------------------------

struct LoopControl {
  bool break_loop = false;
  bool continue_loop = false;
};

class Renderer {
 public:
  explicit Renderer(const Object& context) {
    scopes_.emplace_back();
    for (const auto& [name, value] : context.items) scopes_.back().Set(name, value);
    for (const auto& [name, value] : Globals().items) {
      if (scopes_.back().Find(name) == nullptr) scopes_.back().Set(name, value);
    }
  }
  // A namespace lives no longer than the rendering that made it. Emptying each one the template
  // changed breaks the cycles it may have made through them ({% set ns.me = ns %}), which
  // reference counting alone would never free.
  ~Renderer() {
    for (const auto& [object, ns] : changed_namespaces_) ns.as_object().items.clear();
  }
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  void Render(const NodeList& nodes, std::string& out, LoopControl* loop) {
    for (const auto& node : nodes) {
      if (loop != nullptr && (loop->break_loop || loop->continue_loop)) return;
      try {
        RenderNode(*node, out, loop);
      } catch (const std::length_error& error) {  // a limit passed outside an expression
        FailLimit(node->line, error.what());
      }
    }
  }

 private:
  void RenderNode(const Node& node, std::string& out, LoopControl* loop) {
    budget_.Spend(1);
    switch (node.kind) {
      case Node::Kind::kText:
        Append(node.text, out);
        return;
      case Node::Kind::kOutput: {
        const Value value = Eval(*node.expr);
        if (value.is_string()) {
          Append(value.as_string(), out);
        } else {
          Append(value.Str(), out);
        }
        return;
      }
      case Node::Kind::kIf:
        for (const auto& [condition, body] : node.branches) {
          if (Eval(*condition).Truthy()) {
            Render(body, out, loop);
            return;
          }
        }
        Render(node.else_body, out, loop);
        return;
      case Node::Kind::kFor:
        RenderFor(node, out);
        return;
      case Node::Kind::kSet: {
        Value value = Eval(*node.expr);
        if (node.targets.size() == 1) {
          Set(scopes_.back(), node.targets[0], std::move(value));
          return;
        }
        const Value target = Lookup(node.targets[0]);
        if (!target.is_object() || !target.as_object().is_namespace) {
          Fail(node.line,
               "'set " + node.targets[0] + "." + node.targets[1] + "' needs a namespace() object");
        }
        changed_namespaces_.try_emplace(&target.as_object(), target);
        Set(target.as_object(), node.targets[1], std::move(value));
        return;
      }
      case Node::Kind::kBlock:
        Render(node.body, out, loop);
        return;
      case Node::Kind::kBreak:
      case Node::Kind::kContinue:
        if (loop == nullptr) Fail(node.line, "break or continue outside a for loop");
        (node.kind == Node::Kind::kBreak ? loop->break_loop : loop->continue_loop) = true;
        return;
    }
  }

  // Appends to the rendered text, within kMaxBytes; each kBytesPerStep bytes is a step.
  void Append(std::string_view text, std::string& out) {
    if (out.size() + text.size() > kMaxBytes) {
      CheckBytes(out.size() + text.size(), "the rendered text");
    }
    budget_.Spend(static_cast<int64_t>(text.size()) / kBytesPerStep);
    out += text;
  }

  // Object::Set reads the keys before it; every 16 keys read are a step.
  void Set(Object& object, const std::string& name, Value value) {
    budget_.Spend(static_cast<int64_t>(object.items.size()) / 16);
    object.Set(name, std::move(value));
  }

  void RenderFor(const Node& node, std::string& out) {
    const Value iterable = Eval(*node.expr);
    List items;
    if (iterable.is_list()) {
      items = iterable.as_list();
    } else if (iterable.is_object()) {
      for (const auto& [key, value] : iterable.as_object().items) items.emplace_back(key);
    } else if (iterable.is_string()) {
      CheckItems(iterable.as_string().size(), "a loop over a string's characters");
      for (const char c : iterable.as_string()) items.emplace_back(std::string(1, c));
    } else if (!iterable.is_undefined() && !iterable.is_none()) {
      Fail(node.line, "cannot loop over a " + iterable.TypeName());
    }
    // The inline filter runs before loop.* is counted, as Jinja does.
    if (node.filter) {
      List kept;
      for (const Value& item : items) {
        budget_.Spend(1);
        scopes_.emplace_back();
        Bind(node, item);
        if (Eval(*node.filter).Truthy()) kept.push_back(item);
        scopes_.pop_back();
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      Render(node.else_body, out, nullptr);
      return;
    }
    LoopControl control;
    for (size_t i = 0; i < items.size() && !control.break_loop; ++i) {
      budget_.Spend(kStepsPerIteration);
      control.continue_loop = false;
      scopes_.emplace_back();
      Bind(node, items[i]);
      Object loop;
      const auto n = static_cast<int64_t>(items.size()), k = static_cast<int64_t>(i);
      loop.Set("index", Value(k + 1));
      loop.Set("index0", Value(k));
      loop.Set("revindex", Value(n - k));
      loop.Set("revindex0", Value(n - k - 1));
      loop.Set("first", Value(i == 0));
      loop.Set("last", Value(i + 1 == items.size()));
      loop.Set("length", Value(n));
      loop.Set("previtem", i > 0 ? items[i - 1] : Value());
      loop.Set("nextitem", i + 1 < items.size() ? items[i + 1] : Value());
      scopes_.back().Set("loop", Value(std::move(loop)));
      Render(node.body, out, &control);
      scopes_.pop_back();
    }
  }

  void Bind(const Node& node, const Value& item) {
    if (node.targets.size() == 1) {
      scopes_.back().Set(node.targets[0], item);
      return;
    }
    if (!item.is_list() || item.as_list().size() != node.targets.size()) {
      Fail(node.line, "cannot unpack a " + item.TypeName() + " into " +
                          std::to_string(node.targets.size()) + " names");
    }
    for (size_t t = 0; t < node.targets.size(); ++t) {
      scopes_.back().Set(node.targets[t], item.as_list()[t]);
    }
  }

  Value Lookup(const std::string& name) {
    for (auto scope = scopes_.rbegin(); scope != scopes_.rend(); ++scope) {
      budget_.Spend(static_cast<int64_t>(scope->items.size()) / 16);
      if (const Value* value = scope->Find(name)) return *value;
    }
    return Value();
  }

  // The value of `e`, counted against the budget; a limit passed while evaluating it is a
  // TemplateLimit naming its line.
  Value Eval(const Expr& e) {
    try {
      Value value = Evaluate(e);
      if (value.is_string() || Makes(e)) {
        budget_.Count(value);
      } else {
        budget_.Spend(1);  // a list or dict read, not copied
      }
      return value;
    } catch (const std::length_error& error) {
      FailLimit(e.line, error.what());
    }
  }

  // Whether `e` makes a new value (a string is copied whatever makes it).
  static bool Makes(const Expr& e) {
    return e.kind != Expr::Kind::kLiteral && e.kind != Expr::Kind::kName &&
           e.kind != Expr::Kind::kAttr && e.kind != Expr::Kind::kItem;
  }

  // What a filter, test, operator or call reads of its operands: their items and text.
  void CountOperands(const std::vector<Value>& args,
                     const std::vector<std::pair<std::string, Value>>& kwargs) {
    for (const Value& arg : args) budget_.Count(arg);
    for (const auto& [key, value] : kwargs) budget_.Count(value);
  }

  // A dict's attribute or item: Object::Find reads the keys before it.
  void CountFind(const Value& value) {
    if (value.is_object()) {
      budget_.Spend(static_cast<int64_t>(value.as_object().items.size()) / 16);
    }
  }

  Value Evaluate(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.value;
      case Expr::Kind::kName:
        return Lookup(e.name);
      case Expr::Kind::kAttr: {
        const Value value = Eval(*e.args[0]);
        CountFind(value);
        return GetAttribute(value, e.name, e.line);
      }
      case Expr::Kind::kItem: {
        const Value value = Eval(*e.args[0]);
        CountFind(value);
        return GetItem(value, Eval(*e.args[1]), e.line);
      }
      case Expr::Kind::kSlice: {
        Value bounds[3];
        for (int i = 0; i < 3; ++i) {
          if (e.args[i + 1]) bounds[i] = Eval(*e.args[i + 1]);
        }
        return Slice(Eval(*e.args[0]), bounds[0], bounds[1], bounds[2], e.line);
      }
      case Expr::Kind::kCall: {
        const Value callee = Eval(*e.args[0]);
        if (!callee.is_function()) {
          Fail(e.line,
               "cannot call " +
                   (e.args[0]->kind == Expr::Kind::kName
                        ? "'" + e.args[0]->name + "', which is " +
                              (callee.is_undefined() ? "undefined" : "a " + callee.TypeName())
                        : "a " + callee.TypeName()));
        }
        auto [args, kwargs] = Arguments(e, 1);
        CountOperands(args, kwargs);
        try {
          return callee.as_function()(std::move(args), std::move(kwargs));
        } catch (const TemplateError&) {
          throw;
        } catch (const std::length_error&) {
          throw;
        } catch (const std::exception& error) {
          Fail(e.line, error.what());
        }
      }
      case Expr::Kind::kFilter: {
        auto [args, kwargs] = Arguments(e, 0);
        CountOperands(args, kwargs);
        return ApplyFilter(e.name, std::move(args), std::move(kwargs), e.line, budget_);
      }
      case Expr::Kind::kTest: {
        auto [args, kwargs] = Arguments(e, 0);
        CountOperands(args, kwargs);
        return Value(ApplyTest(e.name, args, e.line, budget_) != e.negated);
      }
      case Expr::Kind::kNot:
        return Value(!Eval(*e.args[0]).Truthy());
      case Expr::Kind::kNeg: {
        const Value v = Eval(*e.args[0]);
        if (v.is_int()) return Binary("-", Value(int64_t{0}), v, false, e.line, budget_);
        if (v.is_float()) return Value(-v.as_number());
        Fail(e.line, "cannot negate a " + v.TypeName());
      }
      case Expr::Kind::kAnd: {
        Value left = Eval(*e.args[0]);
        return left.Truthy() ? Eval(*e.args[1]) : left;
      }
      case Expr::Kind::kOr: {
        Value left = Eval(*e.args[0]);
        return left.Truthy() ? left : Eval(*e.args[1]);
      }
      case Expr::Kind::kConditional:
        if (Eval(*e.args[0]).Truthy()) return Eval(*e.args[1]);
        return e.args.size() > 2 ? Eval(*e.args[2]) : Value();
      case Expr::Kind::kBinary: {
        const Value left = Eval(*e.args[0]);
        const Value right = Eval(*e.args[1]);
        budget_.Count(left);
        budget_.Count(right);
        return Binary(e.name, left, right, e.negated, e.line, budget_);
      }
      case Expr::Kind::kList: {
        List list;
        for (const auto& item : e.args) list.push_back(Eval(*item));
        return Value(std::move(list));
      }
      case Expr::Kind::kDict: {
        Object object;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value key = Eval(*e.args[i]);
          if (!key.is_string()) Fail(e.line, "dict keys must be strings");
          Set(object, key.as_string(), Eval(*e.args[i + 1]));
        }
        return Value(std::move(object));
      }
    }
    Fail(e.line, "unknown expression");
  }

  std::pair<std::vector<Value>, std::vector<std::pair<std::string, Value>>> Arguments(
      const Expr& e, size_t first) {
    std::vector<Value> args;
    for (size_t i = first; i < e.args.size(); ++i) args.push_back(Eval(*e.args[i]));
    std::vector<std::pair<std::string, Value>> kwargs;
    for (const auto& [key, value] : e.kwargs) kwargs.emplace_back(key, Eval(*value));
    return {std::move(args), std::move(kwargs)};
  }

  Budget budget_;
  std::vector<Object> scopes_;
  std::unordered_map<const Object*, Value> changed_namespaces_;
};

}  // namespace

Template::Template(std::string_view source) : body_(StatementParser(Cut(source)).ParseAll()) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::Render(const Object& context) const {
  Renderer renderer(context);
  std::string out;
  renderer.Render(body_, out, nullptr);
  return out;
}

}  // namespace tune::jinja
