/* test_extract.c — what am_extract finds in free text and, as much, what it must not:
 * tables of positive and negative cases per kind, hostile bytes, caps, and failed
 * allocations at every step. */
#include "process/process_internal.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* Runs am_extract on s (len bytes); the caller owns the object. */
static json_t *run_n(const char *s, size_t len, size_t *found) {
    json_t *obj = json_object();
    size_t n = 0;
    am_rc rc = am_extract(s, len, obj, &n);
    CHECK(rc == AM_OK);
    if (found)
        *found = n;
    /* found counts every item in every array, and only non-empty arrays are there */
    size_t total = 0;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        CHECK(json_is_array(v) && json_array_size(v) > 0);
        total += json_array_size(v);
    }
    CHECK(total == n);
    return obj;
}

static json_t *run(const char *s, size_t *found) {
    return run_n(s, strlen(s), found);
}

/* The item of kind key whose text is item (a string, or an object's "text"). */
static json_t *find(json_t *obj, const char *key, const char *item) {
    json_t *arr = json_object_get(obj, key), *v;
    size_t i;
    json_array_foreach(arr, i, v) {
        const char *t = json_is_string(v) ? json_string_value(v)
                                          : json_string_value(json_object_get(v, "text"));
        if (t && strcmp(t, item) == 0)
            return v;
    }
    return NULL;
}

static int has(const char *text, const char *key, const char *item) {
    json_t *obj = run(text, NULL);
    int ok = find(obj, key, item) != NULL;
    if (!ok) {
        char *dump = am_json_dump(obj, NULL);
        fprintf(stderr, "  in %s: no %s \"%s\": %s\n", text, key, item, dump ? dump : "?");
        am_free(dump);
    }
    json_decref(obj);
    return ok;
}

static size_t count(const char *text, const char *key) {
    json_t *obj = run(text, NULL);
    size_t n = json_array_size(json_object_get(obj, key));
    if (n) {
        char *dump = am_json_dump(obj, NULL);
        fprintf(stderr, "  (%s: %s)\n", text, dump ? dump : "?");
        am_free(dump);
    }
    json_decref(obj);
    return n;
}

/* ---------------------------------------------------------------- URLs */

static void test_urls(void) {
    static const struct {
        const char *text, *url;
    } yes[] = {
        {"see https://example.com/a?b=1.", "https://example.com/a?b=1"},
        {"(see https://en.wikipedia.org/wiki/C_(language)).",
         "https://en.wikipedia.org/wiki/C_(language)"},
        {"link (https://x.org/path).", "https://x.org/path"},
        {"[the docs](https://a.io/docs)", "https://a.io/docs"},
        {"https://example.com/a_(b)_c?", "https://example.com/a_(b)_c"},
        {"visit www.example.com, then leave", "www.example.com"},
        {"HTTP://EXAMPLE.COM/X!", "HTTP://EXAMPLE.COM/X"},
        {"<https://a.b/c>", "https://a.b/c"},
        {"\"https://a.b/c\"", "https://a.b/c"},
        {"'https://a.b/c';", "https://a.b/c"},
        {"http://localhost:8080/x?y=[1]", "http://localhost:8080/x?y=[1]"},
        {"go to https://de.wikipedia.org/wiki/Straße!", "https://de.wikipedia.org/wiki/Straße"},
        {"“https://a.b/c”", "https://a.b/c"}, /* curly quotes */
        {"mail me at https://user@host.example/x...", "https://user@host.example/x"},
        {"x https://a.b/#frag, y", "https://a.b/#frag"},
    };
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++)
        CHECK(has(yes[k].text, "urls", yes[k].url));

    static const char *const no[] = {
        "http:// nothing",
        "https://",
        "see www.example here",
        "xhttps://a.com",
        "mail.www.bar.com",
        "ftp://files.a.b",
        "http://.",
        "example.com",
        "https://)",
        "https:// a.b",
        "www.",
    };
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++)
        CHECK(count(no[k], "urls") == 0);

    /* Two in one text, in order; an overlong one is skipped whole, not cut. */
    json_t *obj = run("a https://a.b/1 and http://c.d/2", NULL);
    json_t *urls = json_object_get(obj, "urls");
    CHECK(json_array_size(urls) == 2);
    CHECK(strcmp(json_string_value(json_array_get(urls, 0)), "https://a.b/1") == 0);
    CHECK(strcmp(json_string_value(json_array_get(urls, 1)), "http://c.d/2") == 0);
    json_decref(obj);

    char *long_url = malloc(3000);
    strcpy(long_url, "x https://a.b/");
    size_t n = strlen(long_url);
    memset(long_url + n, 'q', 2500);
    strcpy(long_url + n + 2500, " https://ok.example/ end");
    obj = run(long_url, NULL);
    CHECK(find(obj, "urls", "https://ok.example/"));
    CHECK(json_array_size(json_object_get(obj, "urls")) == 1);
    json_decref(obj);
    free(long_url);
}

/* ---------------------------------------------------------------- email addresses */

static void test_emails(void) {
    static const struct {
        const char *text, *email;
    } yes[] = {
        {"mail john.smith@example.com.", "john.smith@example.com"},
        {"<a+b@sub.example.co.uk>", "a+b@sub.example.co.uk"},
        {"mailto:x_y@ex-ample.org", "x_y@ex-ample.org"},
        {"Anna (anna.k@firma.de), Bob", "anna.k@firma.de"},
        {"1234@numbers.net", "1234@numbers.net"},
        {"an IDN: hans@müller.de!", "hans@müller.de"},
        {"CAPS@EXAMPLE.COM", "CAPS@EXAMPLE.COM"},
        {"to:first-last%tag@a-b.c-d.travel;", "first-last%tag@a-b.c-d.travel"},
    };
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++)
        CHECK(has(yes[k].text, "emails", yes[k].email));

    static const char *const no[] = {
        "a@b",         "a@b.c",
        "foo@bar.123", "@example.com",
        "john@-x.com", "user@ex_ample.com",
        "x@y.com-",    "me at example dot com",
        "a.@b.com",    "john@.com",
        "@@a.com",     "1.5@2.5",
    };
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++)
        CHECK(count(no[k], "emails") == 0);
    /* an address inside a URL is the URL's */
    CHECK(count("https://a.b/?to=x@y.com", "emails") == 0);
}

/* ---------------------------------------------------------------- phone numbers */

static void test_phones(void) {
    static const struct {
        const char *text, *phone;
    } yes[] = {
        {"call +44 20 7946 0958 now", "+44 20 7946 0958"},
        {"+1 (555) 123-4567", "+1 (555) 123-4567"},
        {"office: (555) 123-4567.", "(555) 123-4567"},
        {"(555)123-4567", "(555)123-4567"},
        {"555-123-4567", "555-123-4567"},
        {"555.123.4567", "555.123.4567"},
        {"555 123 4567", "555 123 4567"},
        {"1-800-555-1234", "1-800-555-1234"},
        {"Berlin 030 1234567", "030 1234567"},
        {"030/1234567", "030/1234567"},
        {"06 12 34 56 78", "06 12 34 56 78"},
        {"01.23.45.67.89", "01.23.45.67.89"},
        {"+33 1 23 45 67 89", "+33 1 23 45 67 89"},
        {"+49 30 1234567", "+49 30 1234567"},
        {"ring 555-1234 today", "555-1234"},
        {"+44 (0)20 7946 0958", "+44 (0)20 7946 0958"},
        {"0044 20 7946 0958", "0044 20 7946 0958"},
        {"+442079460958", "+442079460958"},
        {"Call 5551234567", "5551234567"},
        {"Tel: 0301234567", "0301234567"},
        {"phone:+15551234567", "+15551234567"},
        {"mobile 0171 1234567,", "0171 1234567"},
        {"a, +354 555 1234; b", "+354 555 1234"},
        {"+44 20 7946 0958 2026-11-25", "+44 20 7946 0958"},
        {"555-1234 10:30", "555-1234"},
        {"030 1234567 12,50 €", "030 1234567"},
        {"(555) 123-4567 25 November", "(555) 123-4567"},
    };
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++)
        CHECK(has(yes[k].text, "phones", yes[k].phone));

    static const char *const no[] = {
        "call me at 10:30",
        "2026-11-25",
        "on 25.11.2026 at 10:30",
        "order #123456789012",
        "id 123456789012",
        "5551234567",
        "card 4111 1111 1111 1111",
        "card 5500 0000 0000 0004",
        "1,234,567 people",
        "1.234.567 people",
        "12 345 678 people",
        "host 192.168.100.200",
        "pi 3.14159265",
        "0.123456789",
        "ISBN 978-3-16-148410-0",
        "the years 1990-2020",
        "10:30-11:45",
        "2026-11-25 10:30",
        "25.13.2026",
        "2026-13-45",
        "5/12/2026",
        "$5551234567",
        "1234567",
        "+12",
        "555-1234x",
        "page 555 1234",
        "https://a.b/555-123-4567",
        "x@555-123-4567.com",
        "id=5551234567",
        "12345678901234567890",
        "+1 555 123 4567 8901 2345",
        "v1.555.123.4567",
        "temp 555.1234",
        "2026 555 1234",
        "1.5-2.5",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "room 101 555 1234",
        "SSN 123-45-6789",
        "ZIP 12345-6789",
        "version 10.0.19045.3693",
        "tracking 1Z999AA10123456784",
        "Ref: 2026-000123",
    };
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++)
        CHECK(count(no[k], "phones") == 0);
}

/* ---------------------------------------------------------------- dates */

/* The date written as item in text and its "iso" ("" when there must be none). */
static int date_is(const char *text, const char *item, const char *iso) {
    json_t *obj = run(text, NULL);
    json_t *d = find(obj, "dates", item);
    json_t *j = d ? json_object_get(d, "iso") : NULL;
    int ok = d && (iso[0] ? j && strcmp(json_string_value(j), iso) == 0 : j == NULL);
    if (!ok) {
        char *dump = am_json_dump(obj, NULL);
        fprintf(stderr, "  in %s: want %s iso \"%s\": %s\n", text, item, iso, dump ? dump : "?");
        am_free(dump);
    }
    json_decref(obj);
    return ok;
}

static void test_dates(void) {
    static const struct {
        const char *text, *date, *iso;
    } yes[] = {
        {"due 2026-11-25.", "2026-11-25", "2026-11-25"},
        {"2026-11-25T10:00:00Z", "2026-11-25", "2026-11-25"},
        {"2026/1/5", "2026/1/5", "2026-01-05"},
        {"on 25/11/2026", "25/11/2026", "2026-11-25"},
        {"on 11/25/2026", "11/25/2026", "2026-11-25"},
        {"05/06/2026", "05/06/2026", ""},
        {"06/06/2026", "06/06/2026", "2026-06-06"},
        {"25.11.2026", "25.11.2026", "2026-11-25"},
        {"1.2.2026", "1.2.2026", "2026-02-01"},
        {"25-11-2026", "25-11-2026", "2026-11-25"},
        {"25 November 2026", "25 November 2026", "2026-11-25"},
        {"25th Nov. 2026", "25th Nov. 2026", "2026-11-25"},
        {"25. November 2026", "25. November 2026", "2026-11-25"},
        {"1st of May, 2026", "1st of May, 2026", "2026-05-01"},
        {"25 November", "25 November", ""},
        {"Nov 25, 2026", "Nov 25, 2026", "2026-11-25"},
        {"Wednesday, November 25th, 2026.", "November 25th, 2026", "2026-11-25"},
        {"November 25 2026", "November 25 2026", "2026-11-25"},
        {"see you November 25!", "November 25", ""},
        {"Sept 3", "Sept 3", ""},
        {"NOV 25, 2026", "NOV 25, 2026", "2026-11-25"},
        {"on May 5 we", "May 5", ""},
        {"2024-02-29", "2024-02-29", "2024-02-29"},
        {"29 Feb 2024", "29 Feb 2024", "2024-02-29"},
        {"Feb 29", "Feb 29", ""},
        {"2000-02-29", "2000-02-29", "2000-02-29"},
        {"Nov 25, 10am", "Nov 25", ""},
    };
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++)
        CHECK(date_is(yes[k].text, yes[k].date, yes[k].iso));

    static const char *const no[] = {
        "2026-02-30",    "2025-02-29",       "1900-02-29",    "13/13/2026",     "2026-13-01",
        "I may 5 times", "we march 3 miles", "version 1.2.3", "10:30",          "May 2026",
        "Nov 32",        "Feb 30",           "12/2026",       "2026-11-25-7",   "v2026-11-25",
        "0/0/2026",      "31/31/2026",       "2026-11-25x",   "Novak 25 goals", "25 Novel",
        "11/25/0999",    "32.01.2026",       "31 April 2026", "123 May 2026",   "May 10:30",
    };
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++)
        CHECK(count(no[k], "dates") == 0);
}

/* ---------------------------------------------------------------- money amounts */

static int amount_is(const char *text, const char *item, double value, const char *code) {
    json_t *obj = run(text, NULL);
    json_t *a = find(obj, "amounts", item);
    int ok = a && json_real_value(json_object_get(a, "value")) == value &&
             json_is_real(json_object_get(a, "value")) &&
             strcmp(json_string_value(json_object_get(a, "currency")), code) == 0;
    if (!ok) {
        char *dump = am_json_dump(obj, NULL);
        fprintf(stderr, "  in %s: want %s = %g %s: %s\n", text, item, value, code,
                dump ? dump : "?");
        am_free(dump);
    }
    json_decref(obj);
    return ok;
}

static void test_amounts(void) {
    static const struct {
        const char *text, *amount;
        double value;
        const char *code;
    } yes[] = {
        {"lunch $12.50.", "$12.50", 12.5, "USD"},
        {"12,50 € bezahlt", "12,50 €", 12.5, "EUR"},
        {"EUR 1,200.00", "EUR 1,200.00", 1200, "EUR"},
        {"£3", "£3", 3, "GBP"},
        {"1.234,56 EUR", "1.234,56 EUR", 1234.56, "EUR"},
        {"¥500", "¥500", 500, "JPY"},
        {"US$5 each", "US$5", 5, "USD"},
        {"CHF 1'234.50", "CHF 1'234.50", 1234.5, "CHF"},
        {"1 234,56 €", "1 234,56 €", 1234.56, "EUR"},
        {"€1.200", "€1.200", 1200, "EUR"},
        {"raised $2.5M", "$2.5M", 2.5e6, "USD"},
        {"$3 million", "$3 million", 3e6, "USD"},
        {"refund -$5.00", "-$5.00", -5, "USD"},
        {"100 CHF", "100 CHF", 100, "CHF"},
        {"12.50€.", "12.50€", 12.5, "EUR"},
        {"$ 7", "$ 7", 7, "USD"},
        {"20 zł", "20 zł", 20, "PLN"},
        {"$1,000,000", "$1,000,000", 1e6, "USD"},
        {"USD12.99", "USD12.99", 12.99, "USD"},
        {"₹1,500", "₹1,500", 1500, "INR"},
        {"0,99 €", "0,99 €", 0.99, "EUR"},
        {"5 €", "5 €", 5, "EUR"},
        {"(€4,50)", "€4,50", 4.5, "EUR"},
        {"$12/month", "$12", 12, "USD"},
        {"5k EUR? no: €5k", "€5k", 5000, "EUR"},
        {"1.5 EUR", "1.5 EUR", 1.5, "EUR"},
        {"costs 5 dollars.", "5 dollars", 5, "USD"},
        {"20 Euros", "20 Euros", 20, "EUR"},
        {"5 EURO", "5 EURO", 5, "EUR"},
        {"$1,234.56", "$1,234.56", 1234.56, "USD"}, /* the double nearest, not 1234.5599.. */
    };
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++)
        CHECK(amount_is(yes[k].text, yes[k].amount, yes[k].value, yes[k].code));

    static const char *const no[] = {
        "12.50",
        "EURO 5",
        "$",
        "5 dollarsign",
        "ABC 5",
        "USD",
        "$5abc",
        "EUROPE 12",
        "$1,2,3",
        "$12.34567",
        "eur 5",
        "5euros",
        "$1234567890123456",
        "2026-11-25 EUR",
    };
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++)
        CHECK(count(no[k], "amounts") == 0);
}

/* ---------------------------------------------------------------- mixed text, hostile bytes */

static void test_mixed(void) {
    const char *mail = "Hi Anna,\nthe invoice (EUR 1,200.00, due 25 November 2026) is at "
                       "https://pay.example.com/inv?id=42). Questions: billing@example.com or "
                       "+49 30 1234567. Meeting moved to Nov 26, 2026 at 10:30.\n";
    size_t found;
    json_t *obj = run(mail, &found);
    CHECK(found == 6);
    CHECK(find(obj, "urls", "https://pay.example.com/inv?id=42"));
    CHECK(find(obj, "emails", "billing@example.com"));
    CHECK(find(obj, "phones", "+49 30 1234567"));
    CHECK(find(obj, "dates", "25 November 2026"));
    CHECK(find(obj, "dates", "Nov 26, 2026"));
    CHECK(find(obj, "amounts", "EUR 1,200.00"));
    json_decref(obj);

    /* Nothing found: nothing added, and a key already there is left alone. */
    obj = json_object();
    json_object_set_new(obj, "summary", json_string("x"));
    size_t n = 99;
    CHECK(am_extract("plain words only", 16, obj, &n) == AM_OK && n == 0);
    CHECK(json_object_size(obj) == 1);
    CHECK(am_extract(NULL, 0, obj, &n) == AM_OK && n == 0);
    CHECK(am_extract("", 0, obj, NULL) == AM_OK);
    CHECK(am_extract(NULL, 5, obj, &n) == AM_EINVAL);
    CHECK(am_extract("x", 1, NULL, &n) == AM_EINVAL);
    json_decref(obj);

    /* NUL bytes inside len and invalid UTF-8 around matches: found, and kept out. */
    static const char nul[] = "a\0https://x.com/p\0q +44 20 7946 0958\0\xff\xfe"
                              "https://y.org/\xff\xc3\x28 z@y.de\xc0\xaf";
    obj = run_n(nul, sizeof nul - 1, &found);
    CHECK(find(obj, "urls", "https://x.com/p"));
    CHECK(find(obj, "urls", "https://y.org/"));
    CHECK(find(obj, "phones", "+44 20 7946 0958"));
    CHECK(find(obj, "emails", "z@y.de"));
    CHECK(found == 4);
    char *dump = am_json_dump(obj, NULL);
    CHECK(dump != NULL);
    am_free(dump);
    json_decref(obj);

    /* A text cut inside a match or a UTF-8 sequence. */
    static const char cut[] = "€";
    CHECK(count("$", "amounts") == 0);
    obj = run_n(cut, 2, NULL);
    CHECK(json_object_size(obj) == 0);
    json_decref(obj);
    obj = run_n("https://a.b/c", 9, NULL); /* "https://a" */
    CHECK(find(obj, "urls", "https://a"));
    json_decref(obj);
}

static void test_caps(void) {
    /* 150 addresses: 100 reported; the rest of the text is still read for other kinds. */
    struct am_buf b;
    am_buf_init(&b, 1 << 20);
    for (int k = 0; k < 150; k++)
        am_buf_printf(&b, "u%d@example.com ", k);
    am_buf_appends(&b, "and $5");
    size_t found;
    json_t *obj = run(b.data, &found);
    CHECK(json_array_size(json_object_get(obj, "emails")) == 100);
    CHECK(find(obj, "amounts", "$5"));
    CHECK(found == 101);
    json_decref(obj);
    am_buf_free(&b);

    /* Large hostile texts finish (linear scans): long runs of what each scanner starts on. */
    static const char *const units[] = {"1",   "a.",   "1-",   "http://", "a@", "+1 ", "$1,",
                                        "(1)", "Nov ", "1.1.", "www.",    "€",  "\xff"};
    size_t big = 1 << 20;
    char *s = malloc(big + 1);
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t ul = strlen(units[u]);
        for (size_t k = 0; k < big; k++)
            s[k] = units[u][k % ul];
        s[big] = '\0';
        obj = run_n(s, big, &found);
        CHECK(found <= 5 * 100);
        json_decref(obj);
    }
    free(s);
}

/* Every allocation failing in turn: AM_ENOMEM with obj as it was, or the full answer. */
static void test_alloc_failures(void) {
    const char *text = "https://a.b/c x@y.com +44 20 7946 0958 2026-11-25 $12.50 "
                       "https://d.e/f 25 November 2026 12,50 €";
    size_t want;
    json_t *full = run(text, &want);
    CHECK(want == 8);
    for (int sticky = 0; sticky <= 1; sticky++) {
        long nth = 1;
        for (; nth < 1000; nth++) {
            json_t *obj = json_object();
            CHECK(obj && json_object_set_new(obj, "keep", json_true()) == 0);
            size_t found = 12345;
            long failures = am_alloc_failures();
            am_alloc_fail_at(nth, sticky);
            am_rc rc = am_extract(text, strlen(text), obj, &found);
            am_alloc_fail_at(0, 0);
            int failed = am_alloc_failures() != failures;
            CHECK(rc == (failed ? AM_ENOMEM : AM_OK));
            if (rc != AM_OK) {
                CHECK(found == 0 && json_object_size(obj) == 1);
                CHECK(json_object_get(obj, "keep") != NULL);
            } else {
                json_object_del(obj, "keep");
                CHECK(found == want && json_equal(obj, full));
            }
            json_decref(obj);
            if (!failed)
                break;
        }
        CHECK(nth > 10 && nth < 1000); /* it allocates, and it finished */
    }
    json_decref(full);
}

int main(void) {
    am_alloc_init();
    test_urls();
    test_emails();
    test_phones();
    test_dates();
    test_amounts();
    test_mixed();
    test_caps();
    test_alloc_failures();
    return TEST_END();
}
