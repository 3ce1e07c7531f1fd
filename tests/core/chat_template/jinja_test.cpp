// The Jinja subset (core/chat_template/jinja.h) against the engines people render chat templates
// with: Python's jinja2 configured as transformers' apply_chat_template configures it
// (tests/tools/render_chat_template.py) and @huggingface/jinja (tests/tools/js/render.mjs). The
// published templates of Llama 3.1, Mistral v0.3, Qwen2.5, Zephyr and Gemma 2
// (tests/data/chat_templates) on several conversations, and the constructs templates use.
#include "chat_template/jinja.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "chat_template/chat_template.h"
#include "support/test_support.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using testing::RunCommand;
using testing::TempDir;

struct Case {
  std::string name;
  std::string source;
  json context;
};

// What each reference engine makes of `cases`: for each, {"output": ...} or {"error": ...}.
std::pair<json, json> References(const std::vector<Case>& cases) {
  json list = json::array();
  for (const Case& c : cases) list.push_back({{"template", c.source}, {"context", c.context}});
  TempDir dir;
  const fs::path file = dir.Write("cases.json", list.dump());
  const auto python = RunCommand(
      {testing::kPython, TUNE_SOURCE_DIR "/tests/tools/render_chat_template.py", file.string()});
  EXPECT_EQ(python.exit_code, 0) << python.err;
  const auto js =
      RunCommand({TUNE_NODE, TUNE_SOURCE_DIR "/tests/tools/js/render.mjs", file.string()});
  EXPECT_EQ(js.exit_code, 0) << js.err << "(installed by scripts/install-deps.sh)";
  return {json::parse(python.out), json::parse(js.out)};
}

// Renders each case here and compares with jinja2: the same text, or an error where jinja2 raises
// one; with `also_js`, with @huggingface/jinja's text too (which prints Python's values, such as
// True or ['a'], its own way, so only whole templates are compared with it).
void ExpectSameAsReferences(const std::vector<Case>& cases, bool also_js) {
  const auto [python, js] = References(cases);
  ASSERT_EQ(python.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    std::string output, error;
    try {
      const jinja::Value context = JsonToValue(cases[i].context);
      output = jinja::Template(cases[i].source).Render(context.as_object());
    } catch (const jinja::TemplateError& e) {
      error = e.what();
    }
    if (python[i].contains("error")) {
      EXPECT_FALSE(error.empty()) << "jinja2 refused it (" << python[i]["error"]
                                  << "), tune rendered " << json(output);
      continue;
    }
    ASSERT_EQ(error, "") << "jinja2 rendered " << python[i]["output"];
    EXPECT_EQ(output, python[i]["output"].get<std::string>()) << "jinja2 (transformers)";
    if (!also_js) continue;
    if (js[i].contains("output")) {
      EXPECT_EQ(output, js[i]["output"].get<std::string>()) << "@huggingface/jinja";
    } else {
      ADD_FAILURE() << "@huggingface/jinja refused it: " << js[i]["error"];
    }
  }
}

std::string ReadTemplate(const std::string& name) {
  std::ifstream in(fs::path(TUNE_SOURCE_DIR) / "tests/data/chat_templates" / (name + ".jinja"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

json Message(const std::string& role, const std::string& content) {
  return {{"role", role}, {"content", content}};
}

TEST(ChatTemplates, PublishedTemplatesRenderAsTransformersRendersThem) {
  const json tricky =
      Message("user",
              "  Quotes \"double\" and 'single', {{ braces }}, {% tags %},\n"
              "a tab\there, caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80  ");
  const std::vector<std::pair<std::string, json>> conversations = {
      {"one user turn", json::array({Message("user", "Hi there")})},
      {"system and two turns",
       json::array({Message("system", "You are terse."), Message("user", "Hi there"),
                    Message("assistant", "Hello."), Message("user", "Bye")})},
      {"two full turns", json::array({Message("user", "What is 2+2?"), Message("assistant", "4"),
                                      Message("user", "And 3+3?"), Message("assistant", "6")})},
      {"tricky text", json::array({tricky, Message("assistant", " Sure:\n\n- one\n- two \n")})},
      {"user after user", json::array({Message("user", "a"), Message("user", "b")})},
  };
  const std::vector<std::tuple<std::string, std::string, std::string>> models = {
      {"llama-3.1", "<|begin_of_text|>", "<|eot_id|>"},
      {"mistral-v0.3", "<s>", "</s>"},
      {"qwen2.5", "", "<|im_end|>"},
      {"zephyr", "<s>", "</s>"},
      {"gemma-2", "<bos>", "<eos>"}};
  std::vector<Case> cases;
  for (const auto& [model, bos, eos] : models) {
    const std::string source = ReadTemplate(model);
    ASSERT_FALSE(source.empty()) << model;
    for (const auto& [what, messages] : conversations) {
      for (const bool generation_prompt : {false, true}) {
        json context = {{"messages", messages},
                        {"add_generation_prompt", generation_prompt},
                        {"eos_token", eos},
                        {"tools", nullptr},
                        {"documents", nullptr}};
        if (!bos.empty()) context["bos_token"] = bos;
        cases.push_back({model + ", " + what + (generation_prompt ? ", generation prompt" : ""),
                         source, context});
      }
    }
  }
  ExpectSameAsReferences(cases, /*also_js=*/true);
}

TEST(Jinja, ConstructsRenderAsJinja2RendersThem) {
  const json context = {{"items", {3, 1, 2}},
                        {"words", {"alpha", "beta", "gamma"}},
                        {"user", {{"name", "ada"}, {"tags", {"x", "y"}}, {"age", 36}}},
                        {"text", "  Mixed Case Text  "},
                        {"empty", ""},
                        {"nothing", nullptr},
                        {"flag", true},
                        {"pi", 3.25}};
  const std::vector<std::pair<std::string, std::string>> snippets = {
      {"whitespace control", "a  {{- 'b' -}}  c\n  {%- if flag %}\n    d\n  {% endif -%}\n  e"},
      {"trim_blocks and lstrip_blocks", "x\n    {% if flag %}\n    y\n    {% endif %}\nz\n"},
      {"plus disables lstrip", "x\n    {%+ if flag %}y{% endif %}\n"},
      {"comments", "a{# note #}\n  {#- dashed -#}  b"},
      {"loop variables",
       "{% for w in words %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.first "
       "}}/"
       "{{ loop.last }}/{{ loop.length }}:{{ w }};{% endfor %}"},
      {"loop filter and else",
       "{% for i in items if i > 1 %}{{ i }}{{ loop.length }}{% else %}none{% endfor %}"
       "{% for i in [] %}x{% else %}empty{% endfor %}"},
      {"break and continue",
       "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}"
       "{% endif %}{{ i }}{% endfor %}"},
      {"namespace",
       "{% set ns = namespace(n=0, seen=false) %}{% for i in items %}{% set ns.n = ns.n + i %}"
       "{% endfor %}{{ ns.n }}{{ ns.seen }}"},
      {"set does not leave the loop",
       "{% set x = 1 %}{% for i in items %}{% set x = i %}{% endfor %}{{ x }}"},
      {"tuple unpacking", "{% for k, v in user.items() %}{{ k }}={{ v }};{% endfor %}"},
      {"slices", "{{ words[1:] }}{{ words[:-1] }}{{ words[::-1] }}{{ text[2:7] }}{{ words[-1] }}"},
      {"filters",
       "{{ text|trim }}|{{ text|upper }}|{{ text|lower }}|{{ words|join(', ') }}|"
       "{{ words|length }}|{{ words|first }}|{{ words|last }}|{{ nothing|default('d') }}|"
       "{{ empty|default('e', true) }}|{{ 'a-b-c'|replace('-', '+') }}|{{ items|reverse|list }}"},
      {"tojson",
       "{{ user|tojson }}\n{{ user|tojson(indent=2) }}\n{{ 'é\"\\n'|tojson }}\n{{ pi|tojson }}"},
      {"selectattr and map",
       "{% set people = [{'n': 'a', 'r': 'x'}, {'n': 'b', 'r': 'y'}, {'n': 'c', 'r': 'x'}] %}"
       "{{ people|selectattr('r', 'equalto', 'x')|map(attribute='n')|join }}"
       "{{ people|rejectattr('r', 'equalto', 'x')|list|length }}"
       "{{ words|reject('equalto', 'beta')|join(',') }}{{ items|select('odd')|list }}"},
      {"tests",
       "{{ nothing is none }}{{ missing is defined }}{{ user is mapping }}{{ words is string }}"
       "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 'x' is not none }}"},
      {"operators",
       "{{ 7 // 2 }} {{ 7 / 2 }} {{ -7 % 3 }} {{ 2 * 3 + 1 }} {{ 'ab' ~ 1 ~ none }} "
       "{{ 'a' in 'cat' }} {{ 'q' not in words }} {{ 1 == 1.0 }} {{ not flag or 'z' }} "
       "{{ 'yes' if flag else 'no' }} {{ 'x' * 3 }} {{ [1, 2] + [3] }}"},
      {"string methods",
       "{{ text.strip() }}|{{ text.lstrip() }}|{{ 'a,b,,c'.split(',') }}|"
       "{{ ' a  b '.split() }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|"
       "{{ 'hello world'.title() }}|{{ 'x'.upper() }}|{{ '--x--'.strip('-') }}"},
      {"dict access",
       "{{ user.name }}{{ user['age'] }}{{ user.missing }}{{ user.get('age') }}"
       "{{ user.get('none', 'fallback') }}{{ 'name' in user }}{{ user.keys()|list }}"},
      {"str of values",
       "{{ nothing }}|{{ flag }}|{{ pi }}|{{ items }}|{{ user }}|{{ 1.0 }}|{{ 1e20 }}|{{ 0.0001 "
       "}}"},
      {"raise_exception", "{% if flag %}{{ raise_exception('no system role') }}{% endif %}"},
      {"lists cannot be changed", "{% set l = [1] %}{{ l.append(2) }}{{ l }}"},
      {"undefined call", "{{ nope() }}"},
  };
  std::vector<Case> cases;
  for (const auto& [name, source] : snippets) cases.push_back({name, source, context});
  ExpectSameAsReferences(cases, /*also_js=*/false);
}

// The limits are far from what published templates need: a conversation of 2,000 messages and
// 4 MB renders with each of them.
TEST(ChatTemplates, PublishedTemplatesRenderLongConversationsWithinTheLimits) {
  json messages = json::array();
  for (int i = 0; i < 2000; ++i) {
    messages.push_back(Message(i % 2 == 0 ? "user" : "assistant",
                               "turn " + std::to_string(i) + ": " + std::string(2000, 'x')));
  }
  const json context = {{"messages", messages}, {"add_generation_prompt", true},
                        {"bos_token", "<s>"},   {"eos_token", "</s>"},
                        {"tools", nullptr},     {"documents", nullptr}};
  for (const std::string model : {"llama-3.1", "mistral-v0.3", "qwen2.5", "zephyr", "gemma-2"}) {
    SCOPED_TRACE(model);
    const std::string text =
        jinja::Template(ReadTemplate(model)).Render(JsonToValue(context).as_object());
    EXPECT_NE(text.find("turn 1999: "), std::string::npos);
  }
}

TEST(Jinja, RefusesWhatItDoesNotSupportNamingTheConstructAndLine) {
  for (const auto& [source, expected] : std::vector<std::pair<std::string, std::string>>{
           {"a\nb\n{% macro f(x) %}{{ x }}{% endmacro %}",
            "line 3: '{% macro %}' is not supported"},
           {"{% if x %}\n{{ y | wordwrap }}\n{% endif %}",
            "line 2: filter 'wordwrap' is not supported"},
           {"\n{% for x in y %}", "the template ends before 'endfor'"},
           {"{{ 'abc' }", "line 1: a tag opened here is never closed"},
           {"{% endif %}", "line 1: 'endif' without its opening tag"},
           {"{{ x is frobnicated }}", "line 1: test 'frobnicated' is not supported"},
           {"{{ " + std::string(10000, '(') + "1" + std::string(10000, ')') + " }}",
            "line 1: an expression nested deeper than 256 levels"},
           {"{{ " + std::string(10000, '[') + std::string(10000, ']') + " }}",
            "nested deeper than 256 levels"},
           {"{{ " + std::string(5000, '-') + "1 }}", "nested deeper than 256 levels"},
           {[] {
              std::string deep;
              for (int i = 0; i < 5000; ++i) deep += "{% if x %}";
              return deep;
            }(),
            "blocks nested deeper than 256 levels"}}) {
    SCOPED_TRACE(source);
    try {
      jinja::Template(source).Render({});
      ADD_FAILURE() << "rendered";
    } catch (const jinja::TemplateError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

// What rendering `source` throws as TemplateLimit, "rendered: " and the text, or "error: " and
// another refusal.
std::string LimitOf(const std::string& source, const json& context = json::object()) {
  try {
    return "rendered: " + jinja::Template(source).Render(JsonToValue(context).as_object());
  } catch (const jinja::TemplateLimit& e) {
    return e.what();
  } catch (const jinja::TemplateError& e) {
    return std::string("error: ") + e.what();
  }
}

// `link` repeated `n` times after `start`.
std::string Chain(const std::string& start, const std::string& link, int n) {
  std::string chain = start;
  for (int i = 0; i < n; ++i) chain += link;
  return chain;
}

TEST(Jinja, RefusesChainsPastTheNestingLimit) {
  const std::string refusal =
      "line 1: an expression nested deeper than 256 levels (tune's limit "
      "for a chat template)";
  const json context = {{"x", "a"}, {"d", {{"a", "b"}}}, {"l", {1}}};
  for (const int n : {257, 100000}) {
    for (const auto& [start, link] :
         std::vector<std::pair<std::string, std::string>>{{"x", "|trim"},
                                                          {"d", ".a"},
                                                          {"l", "[0]"},
                                                          {"x", " ~ x"},
                                                          {"1", " + 1"},
                                                          {"1", " * 1"},
                                                          {"x", " and x"},
                                                          {"x", " or x"},
                                                          {"1", " < 2"},
                                                          {"x", " in x"},
                                                          {"x.upper", "()"},
                                                          {"x", "|default('y')"}}) {
      SCOPED_TRACE(start + link + " x " + std::to_string(n));
      EXPECT_EQ(LimitOf("{{ " + Chain(start, link, n) + " }}", context), refusal);
    }
  }
  EXPECT_EQ(LimitOf("{{ " + Chain("", "+", 100000) + "1 }}"), refusal);
  EXPECT_EQ(LimitOf("{% if " + Chain("x", "|trim", 300) + " %}{% endif %}", context), refusal);
}

TEST(Jinja, RendersChainsUpToTheNestingLimit) {
  const json context = {{"x", " a "}, {"d", {{"a", "b"}}}};
  EXPECT_EQ(LimitOf("{{ " + Chain("x", "|trim", 255) + " }}", context), "rendered: a");
  EXPECT_EQ(LimitOf("{{ " + Chain("1", " + 1", 255) + " }}"), "rendered: 256");
  EXPECT_EQ(LimitOf("{{ " + Chain("x", " ~ 'b'", 255) + " }}", context),
            "rendered:  a " + std::string(255, 'b'));
}

TEST(Jinja, RefusesRenderingPastTheStepBudget) {
  const std::string steps =
      "rendering takes more than 20,000,000 steps (tune's limit for a chat template)";
  for (const auto& [source, expected] : std::vector<std::pair<std::string, std::string>>{
           {"{% for i in range(1000000) %}\n{% for j in range(1000000) %}{% endfor %}"
            "{% endfor %}",
            "line 2: " + steps},
           {"{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
            "{% endfor %}{% endfor %}{% endfor %}",
            "line 1: " + steps},
           // Each level holds the one below twice: 2^60 leaves in 120 steps, compared.
           {"{% set ns = namespace(x=[1]) %}{% for i in range(60) %}{% set ns.x = [ns.x, ns.x] %}"
            "{% endfor %}\n{{ ns.x == [ns.x[0], ns.x[1]] }}",
            "line 2: " + steps},
           {"{% set ns = namespace(n=0) %}{% for i in range(100000000) %}{% endfor %}",
            "line 1: range(100000000) would have more than 1,048,576 items (tune's limit for a "
            "chat template)"},
           {"{% for i in range(1000000000000) %}{% endfor %}",
            "line 1: range(1000000000000) would have more than 1,048,576 items (tune's limit for "
            "a chat template)"}}) {
    SCOPED_TRACE(source);
    EXPECT_EQ(LimitOf(source), expected);
  }
}

TEST(Jinja, RefusesTextAndListsPastTheSizeLimits) {
  const std::string limit = " (tune's limit for a chat template)";
  for (const auto& [source, expected] : std::vector<std::pair<std::string, std::string>>{
           {"{{ 'a' * 1000000000 }}",
            "line 1: a string repeated 1000000000 times would be longer than 16 MiB" + limit},
           {"{% set ns = namespace(s='ab') %}{% for i in range(64) %}\n"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "line 2: a string would be longer than 16 MiB" + limit},
           {"{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
            "{% set ns.s = ns.s + ns.s %}{% endfor %}",
            "line 1: a string would be longer than 16 MiB" + limit},
           {"{% set ns = namespace(l=[1]) %}{% for i in range(64) %}"
            "{% set ns.l = ns.l + ns.l %}{% endfor %}",
            "line 1: a list would have more than 1,048,576 items" + limit},
           {"{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
            "line 1: the rendered text would be longer than 16 MiB" + limit},
           {"{{ [[1]]|tojson(indent=1000000000) }}",
            "line 1: a value's text would be longer than 16 MiB" + limit},
           {"{{ ('x' * 10000000)|replace('x', 'yy') }}",
            "line 1: replace()'s result would be longer than 16 MiB" + limit},
           {"{{ ['x' * 10000000, 'y' * 10000000]|join }}",
            "line 1: join()'s result would be longer than 16 MiB" + limit},
           {"{{ ('x' * 2000000)|list|length }}",
            "line 1: a list of characters would have more than 1,048,576 items" + limit},
           // 2^60 leaves in 120 steps, printed.
           {"{% set ns = namespace(x=[1]) %}{% for i in range(60) %}{% set ns.x = [ns.x, ns.x] %}"
            "{% endfor %}{{ ns.x }}",
            "line 1: a value's text would be longer than 16 MiB" + limit},
           {"{% set ns = namespace(x=[1]) %}{% for i in range(60) %}{% set ns.x = [ns.x, ns.x] %}"
            "{% endfor %}{{ ns.x|tojson }}",
            "line 1: a value's text would be longer than 16 MiB" + limit}}) {
    SCOPED_TRACE(source);
    EXPECT_EQ(LimitOf(source), expected);
  }
  EXPECT_EQ(LimitOf("{{ '' * 1000000000000000000 }}|{{ 'ab' * 3 }}"), "rendered: |ababab");
}

TEST(Jinja, RefusesValuesNestedPastTheLimitWithoutOverflowingTheStack) {
  const std::string deep =
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
      "{% endfor %}";
  const std::string printed =
      "line 1: a value nested deeper than 256 levels is printed (tune's "
      "limit for a chat template)";
  EXPECT_EQ(LimitOf(deep + "{{ ns.x }}"), printed);
  EXPECT_EQ(LimitOf(deep + "{{ ns.x|tojson }}"), printed);
  EXPECT_EQ(LimitOf(deep + "{{ ns.x == ns.x }}"),
            "line 1: values compared nested deeper than 256 levels (tune's limit for a chat "
            "template)");
  EXPECT_EQ(LimitOf(deep + "done"), "rendered: done");  // and the list is freed
  // A namespace that holds itself: printed, it is nested without end.
  EXPECT_EQ(LimitOf("{% set ns = namespace() %}{% set ns.me = [ns] %}{{ ns }}"), printed);
  EXPECT_EQ(LimitOf("{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns.me.me.me.a }}"),
            "rendered: 1");
}

// Python's integers grow; tune's are int64_t, and refuse what would overflow them (undefined in
// C++) instead.
TEST(Jinja, RefusesIntegersPastInt64InsteadOfOverflowing) {
  for (const std::string source :
       {"{{ 9223372036854775807 + 1 }}", "{{ -9223372036854775807 - 2 }}",
        "{{ 4611686018427387904 * 2 }}", "{{ -(-9223372036854775807 - 1) }}",
        "{{ (-9223372036854775807 - 1)|abs }}", "{{ (-9223372036854775807 - 1) // -1 }}"}) {
    EXPECT_EQ(LimitOf(source).rfind("error: line 1: an integer too large for tune's templates", 0),
              0u)
        << source << ": " << LimitOf(source);
  }
  EXPECT_EQ(LimitOf("{{ range(1e30|int) }}"),
            "error: line 1: an integer too large for tune's templates (1e+30)");
  EXPECT_EQ(LimitOf("{{ [1, 2, 3][1::9223372036854775807] }}|{{ range(9223372036854775800, "
                    "9223372036854775807, 5)|list }}"),
            "rendered: [2]|[9223372036854775800, 9223372036854775805]");
}

TEST(Jinja, LimitsAreTemplateLimitsAndOtherRefusalsAreNot) {
  EXPECT_EQ(LimitOf("{{ raise_exception('no') }}"), "error: line 1: the template raised: no");
  EXPECT_EQ(LimitOf("{{ 1 / 0 }}"), "error: line 1: division by zero");
  EXPECT_EQ(LimitOf(Chain("", "{% if x %}", 300)),
            "line 1: blocks nested deeper than 256 levels (tune's limit for a chat template)");
}

}  // namespace
}  // namespace tune
