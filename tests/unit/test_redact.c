/* SPDX-License-Identifier: MIT */
/* test_redact.c: the redaction rule on URLs, query strings, auth schemes, headers and cut text. */
#include "core/redact.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_text_table(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } rows[] = {
        {"http://user:urlsecret@127.0.0.1:9", "http://***@127.0.0.1:9"},
        {"pushing to https://u:p@loki:3100/loki/api/v1/push (protobuf)",
         "pushing to https://***@loki:3100/loki/api/v1/push (protobuf)"},
        {"http://token@host/x", "http://***@host/x"},
        {"http://host/path@notuser", "http://host/path@notuser"},
        {"http://a:b@c@host/", "http://***@host/"},
        {"http://127.0.0.1:3100/loki/api/v1/push", "http://127.0.0.1:3100/loki/api/v1/push"},
        {"http://h/p?api_key=s3cr3t&x=1", "http://h/p?api_key=***&x=1"},
        {"http://h/p?x=1&access_token=s3cr3t#frag", "http://h/p?x=1&access_token=***#frag"},
        {"http://h/p?sig=abc;pwd=def&page=2", "http://h/p?sig=***;pwd=***&page=2"},
        {"http://h/p?orgid=tenant1", "http://h/p?orgid=tenant1"},
        /* a mask inside the authority stops at its '/', so the result is stable (fuzz_redact) */
        {"http://u:p&auth=x/v1/a@h&y=1", "http://u:p&auth=***/v1/a@h&y=1"},
        {"Authorization: Bearer abc.def", "Authorization: ***"},
        {"proxy-authorization: Basic dXNlcjpwYXNz\r\nHost: h",
         "proxy-authorization: ***\r\nHost: h"},
        {"{\"Authorization\":\"Bearer tok\",\"a\":1}", "{\"Authorization\":\"***\",\"a\":1}"},
        {"X-Api-Key: k1 k2\r\nCookie: c=1", "X-Api-Key: ***\r\nCookie: ***"},
        {"got Bearer tok123, retry", "got Bearer ***, retry"},
        {"basic   dXNlcg== end", "basic   *** end"},
        {"X-Scope-OrgID: tenant1", "X-Scope-OrgID: tenant1"},
        {"no authorization header", "no authorization header"},
        {"unauthorized", "unauthorized"},
        {"", ""},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char out[256];
        size_t n = lc_redact_text(rows[i].in, strlen(rows[i].in), out, sizeof(out));
        assert_string_equal(out, rows[i].want);
        assert_int_equal(n, strlen(rows[i].want));
    }
}

static void test_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool secret;
    } rows[] = {
        {"token", true},         {"access_token", true}, {"API_KEY", true}, {"password", true},
        {"passwd", true},        {"pwd", true},          {"sig", true},     {"X-Signature", true},
        {"client_secret", true}, {"pass", true},         {"page", false},   {"tenant", false},
        {"orgid", false},        {"user", false},        {"signal", false}, {"design", false},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(lc_redact_name_is_secret(rows[i].name, strlen(rows[i].name)),
                         rows[i].secret);
}

static void test_headers(void **state)
{
    (void)state;
    assert_true(lc_redact_header_is_secret("Authorization"));
    assert_true(lc_redact_header_is_secret("proxy-authorization"));
    assert_true(lc_redact_header_is_secret("Cookie"));
    assert_true(lc_redact_header_is_secret("Set-Cookie"));
    assert_true(lc_redact_header_is_secret("X-Api-Key"));
    assert_true(lc_redact_header_is_secret("X-Auth-Token"));
    assert_false(lc_redact_header_is_secret("X-Scope-OrgID"));
    assert_false(lc_redact_header_is_secret("Content-Type"));
    assert_false(lc_redact_header_is_secret(NULL));
}

/* A short buffer cuts plain text anywhere but never shows part of a secret. */
static void test_cut(void **state)
{
    (void)state;
    static const char in[] = "http://user:secretpw@h/";
    for (size_t cap = 1; cap <= sizeof(in) + 4; cap++) {
        char out[64];
        memset(out, 'X', sizeof(out));
        size_t n = lc_redact_text(in, strlen(in), out, cap);
        assert_true(n < cap);
        assert_int_equal(out[n], '\0');
        assert_null(strstr(out, "secret"));
        assert_null(strstr(out, "user"));
        /* a prefix of the full answer, and a mask is whole or absent */
        assert_memory_equal(out, "http://***@h/", n);
        assert_true(n <= 7 || n >= 10);
    }
    char out[8];
    assert_int_equal(lc_redact_text(NULL, 5, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_string_equal(lc_redact_url(NULL, out, sizeof(out)), "");
    assert_int_equal(lc_redact_text("abc", 3, out, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_table),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
