/* extract.c — deterministic extraction of URLs, email addresses, phone numbers, dates and
 * money amounts from free text, with hand-written scanners that look a bounded distance
 * ahead of each word start, so any input (any bytes, any size) is read in linear time. */
#include "process_internal.h"

#include <stdio.h>
#include <string.h>

/* Caps that keep one event's analysis small whatever text it came from. */
#define MAX_ITEMS 100      /* per kind */
#define URL_MAX_BYTES 1024 /* longer runs are skipped whole: tracking blobs, not links */
#define EMAIL_LOCAL_MAX 64 /* RFC 5321 */
#define EMAIL_DOMAIN_MAX 253
#define EMAIL_MAX 254
#define LABEL_MAX 63
#define PHONE_MIN_DIGITS 7
#define PHONE_MAX_DIGITS 15 /* E.164 */
#define PHONE_MAX_GROUPS 8
#define NUMBER_MAX_DIGITS 15 /* exact in a double */
#define NUMBER_MAX_GROUPS 8
#define CUE_WINDOW 24 /* bytes before a number searched for "call", "tel" and the like */

enum kind { K_URL, K_EMAIL, K_PHONE, K_DATE, K_AMOUNT, K_COUNT };
static const char *const kind_key[K_COUNT] = {"urls", "emails", "phones", "dates", "amounts"};

struct scan {
    const unsigned char *s;
    size_t len;
    json_t *arr[K_COUNT];
    size_t n[K_COUNT];
    size_t email_skip_until; /* no address can start before this: see try_email */
    am_rc rc;
};

/* What a scanner found at one place. */
struct match {
    enum kind kind;
    size_t start, end;
    int emit;         /* 0: consumed but not reported (an overlong URL) */
    int y, m, d;      /* dates: y == 0 when the ISO form is not known */
    double value;     /* amounts */
    const char *code; /* amounts: ISO 4217 */
};

/* ---------------------------------------------------------------- characters */

static int is_digit(int c) {
    return c >= '0' && c <= '9';
}
static int is_alpha(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int is_alnum(int c) {
    return is_digit(c) || is_alpha(c);
}
static int is_upper(int c) {
    return c >= 'A' && c <= 'Z';
}
static int lower(int c) {
    return is_upper(c) ? c + 32 : c;
}
/* c is one of the bytes in set (never NUL: strchr would find the terminator). */
static int in_set(int c, const char *set) {
    return c > 0 && strchr(set, c) != NULL;
}


/* Letters, digits and combining marks, by block (the same split embed_hash.c uses):
 * what may not sit right before a match, and what a URL or domain may hold. */
static int is_word_cp(uint32_t c) {
    if (c < 0x80)
        return is_alnum((int)c);
    if (c < 0xc0)
        return c == 0xaa || c == 0xb5 || c == 0xba;
    if (c == 0xd7 || c == 0xf7)
        return 0;
    if (c < 0x2000) {
        /* punctuation inside script blocks: Greek, Armenian, Hebrew, Arabic, Devanagari */
        static const uint16_t punct[] = {0x37e, 0x387, 0x589, 0x5be, 0x5c0, 0x5c3,
                                         0x60c, 0x61b, 0x61f, 0x66a, 0x66b, 0x66c,
                                         0x66d, 0x6d4, 0x964, 0x965, 0x10fb};
        for (size_t k = 0; k < sizeof punct / sizeof punct[0]; k++)
            if (c == punct[k])
                return 0;
        return 1;
    }
    if (c < 0x2c00)
        return c >= 0x20d0 && c <= 0x20ff; /* combining marks for symbols */
    if (c < 0x2e00)
        return 1;
    if (c < 0x2e80 || (c >= 0x3000 && c <= 0x303f))
        return 0;
    if (c < 0xd800)
        return 1;
    if (c < 0xf900)
        return 0;
    if (c < 0xfe00)
        return c != 0xfd3e && c != 0xfd3f;
    if (c < 0xfe10)
        return 1;
    if (c < 0xfe70)
        return c >= 0xfe20 && c <= 0xfe2f;
    if (c < 0xff00)
        return c != 0xfeff;
    if (c < 0xfff0)
        return (c >= 0xff10 && c <= 0xff19) || (c >= 0xff21 && c <= 0xff3a) ||
               (c >= 0xff41 && c <= 0xff5a) || (c >= 0xff66 && c <= 0xffdc);
    if (c < 0x10000)
        return 0;
    return c < 0x1d000 || (c >= 0x20000 && c < 0x40000);
}

/* Length of the word character (ASCII alnum or a non-ASCII letter) at p, or 0. */
static size_t word_char_at(const struct scan *sc, size_t p) {
    if (p >= sc->len)
        return 0;
    uint32_t c;
    size_t n = am_utf8_decode(sc->s + p, sc->len - p, &c);
    return n && is_word_cp(c) ? n : 0;
}

/* Whether the character ending just before i is a word character. */
static int word_before(const struct scan *sc, size_t i) {
    if (i == 0)
        return 0;
    size_t j = i - 1;
    while (j > 0 && i - j < 4 && (sc->s[j] & 0xc0) == 0x80)
        j--;
    uint32_t c;
    size_t n = am_utf8_decode(sc->s + j, i - j, &c);
    return n == i - j && is_word_cp(c);
}

static int at(const struct scan *sc, size_t p) {
    return p < sc->len ? sc->s[p] : -1;
}

/* Digits at p, counting up to limit + 1 so that callers can tell "too many". */
static size_t count_digits(const struct scan *sc, size_t p, size_t limit) {
    size_t n = 0;
    while (n <= limit && is_digit(at(sc, p + n)))
        n++;
    return n;
}

static int read_int(const struct scan *sc, size_t p, size_t n) {
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (sc->s[p + i] - '0');
    return v;
}

/* Case-insensitive ASCII prefix test. */
static int starts_with(const struct scan *sc, size_t p, const char *word) {
    size_t n = strlen(word);
    if (n > sc->len - p)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(sc->s[p + i]) != lower((unsigned char)word[i]))
            return 0;
    return 1;
}

/* A number may start at p unless it continues one before it ("1.5", "12-34", "3/4"). */
static int number_start_ok(const struct scan *sc, size_t p) {
    if (p < 2)
        return 1;
    return !(in_set(sc->s[p - 1], ".,'/:-") && is_digit(sc->s[p - 2]));
}

/* Whether the match ending at p is followed by more of a number or word ("-5", ".5", "x"). */
static int ends_clean(const struct scan *sc, size_t p) {
    if (word_char_at(sc, p))
        return 0;
    return !(in_set(at(sc, p), ".,-/:") && is_digit(at(sc, p + 1)));
}

/* ---------------------------------------------------------------- URLs */

/* Bytes of the URL character at p, or 0 at whatever ends a URL. */
static size_t url_char(const struct scan *sc, size_t p) {
    int c = at(sc, p);
    if (c < 0)
        return 0;
    if (c < 0x80)
        return c > 0x20 && c < 0x7f && !in_set(c, "<>\"{}|\\^`");
    return word_char_at(sc, p); /* letters of an IRI, not quotes, dashes or emoji */
}

static int try_url(struct scan *sc, size_t i, struct match *m) {
    size_t p;
    int www = 0;
    if (starts_with(sc, i, "https://"))
        p = i + 8;
    else if (starts_with(sc, i, "http://"))
        p = i + 7;
    else if (starts_with(sc, i, "www.")) {
        /* not the tail of "mail.www.example.com" or "user@www..." */
        if (i > 0 && in_set(sc->s[i - 1], ".@/-_"))
            return 0;
        p = i + 4;
        www = 1;
    } else
        return 0;
    size_t host = p;
    if (!word_char_at(sc, host) && at(sc, host) != '[')
        return 0;
    size_t end = p, open_paren = 0, close_paren = 0, open_bracket = 0, close_bracket = 0;
    for (size_t n; (n = url_char(sc, end)) != 0; end += n) {
        int c = sc->s[end];
        open_paren += c == '(';
        close_paren += c == ')';
        open_bracket += c == '[';
        close_bracket += c == ']';
    }
    /* Sentence punctuation and a closing bracket the URL did not open belong to the text:
     * "(see https://en.wikipedia.org/wiki/C_(language))." keeps one ')'. */
    while (end > host) {
        int c = sc->s[end - 1];
        if (in_set(c, ".,;:!?'\"*")) {
            end--;
        } else if (c == ')' && close_paren > open_paren) {
            end--;
            close_paren--;
        } else if (c == ']' && close_bracket > open_bracket) {
            end--;
            close_bracket--;
        } else {
            break;
        }
    }
    if (end <= host)
        return 0;
    if (www) { /* "www.example" alone is a word, not a link: a dot must follow */
        size_t q = host;
        while (q < end && sc->s[q] != '.' && sc->s[q] != '/' && sc->s[q] != ':')
            q++;
        if (q + 1 >= end || sc->s[q] != '.' || !word_char_at(sc, q + 1))
            return 0;
    }
    m->kind = K_URL;
    m->start = i;
    m->end = end;
    m->emit = end - i <= URL_MAX_BYTES;
    return 1;
}

/* ---------------------------------------------------------------- email addresses */

static int local_char(int c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* One domain label at p: letters, digits and inner hyphens. Its length, or 0. */
static size_t domain_label(const struct scan *sc, size_t p, int *all_alpha) {
    size_t q = p, n;
    *all_alpha = 1;
    while (q - p <= LABEL_MAX) {
        if ((n = word_char_at(sc, q)) != 0) {
            if (n == 1 && is_digit(sc->s[q]))
                *all_alpha = 0;
            q += n;
        } else if (at(sc, q) == '-' && q > p) {
            *all_alpha = 0;
            q++;
        } else {
            break;
        }
    }
    if (q == p || q - p > LABEL_MAX || sc->s[q - 1] == '-')
        return 0;
    return q - p;
}

static int try_email(struct scan *sc, size_t i, struct match *m) {
    if (i < sc->email_skip_until || !is_alnum(sc->s[i]))
        return 0;
    size_t p = i;
    while (p - i <= EMAIL_LOCAL_MAX && local_char(at(sc, p)))
        p++;
    if (at(sc, p) != '@') {
        /* Every later start in this run would stop at the same place: don't rescan it. */
        if (p - i <= EMAIL_LOCAL_MAX)
            sc->email_skip_until = p;
        return 0;
    }
    if (p - i > EMAIL_LOCAL_MAX || sc->s[p - 1] == '.')
        return 0;
    for (size_t q = i; q + 1 < p; q++)
        if (sc->s[q] == '.' && sc->s[q + 1] == '.')
            return 0;
    size_t q = p + 1, labels = 0, label_len = 0;
    int all_alpha = 0;
    for (;;) {
        label_len = domain_label(sc, q, &all_alpha);
        if (!label_len)
            break;
        labels++;
        q += label_len;
        if (q - (p + 1) > EMAIL_DOMAIN_MAX)
            break;
        if (at(sc, q) != '.' || !word_char_at(sc, q + 1))
            break;
        q++;
    }
    /* A domain has a dot and ends in a TLD of letters; the domain's verdict does not
     * depend on where the local part began, so later starts need not look again. */
    if (labels < 2 || !all_alpha || label_len < 2 || q - (p + 1) > EMAIL_DOMAIN_MAX ||
        q - i > EMAIL_MAX || at(sc, q) == '@') {
        sc->email_skip_until = p + 1;
        return 0;
    }
    m->kind = K_EMAIL;
    m->start = i;
    m->end = q;
    m->emit = 1;
    return 1;
}

/* ---------------------------------------------------------------- dates */

static const struct {
    const char *name;
    int month;
    int capital; /* also an English word ("may", "march"): only as a capitalised name */
} months[] = {
    {"january", 1, 0},   {"jan", 1, 0},   {"february", 2, 0},  {"feb", 2, 0},      {"march", 3, 1},
    {"mar", 3, 1},       {"april", 4, 0}, {"apr", 4, 0},       {"may", 5, 1},      {"june", 6, 0},
    {"jun", 6, 0},       {"july", 7, 0},  {"jul", 7, 0},       {"august", 8, 0},   {"aug", 8, 0},
    {"september", 9, 0}, {"sept", 9, 0},  {"sep", 9, 0},       {"october", 10, 0}, {"oct", 10, 0},
    {"november", 11, 0}, {"nov", 11, 0},  {"december", 12, 0}, {"dec", 12, 0},
};

/* The month named at p (a whole word, an abbreviation may end in '.'): 1..12, or 0. */
static int month_at(const struct scan *sc, size_t p, size_t *end) {
    size_t n = 0;
    while (n <= 9 && is_alpha(at(sc, p + n)))
        n++;
    if (n < 3 || n > 9 || word_char_at(sc, p + n))
        return 0;
    for (size_t k = 0; k < sizeof months / sizeof months[0]; k++) {
        if (strlen(months[k].name) != n || !starts_with(sc, p, months[k].name))
            continue;
        if (months[k].capital && !is_upper(sc->s[p]))
            return 0;
        if (n < 5 && at(sc, p + n) == '.')
            n++;
        *end = p + n;
        return months[k].month;
    }
    return 0;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && (y == 0 || (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
        return 29; /* with no year, 29 February may be meant */
    return days[m - 1];
}

static int valid_date(int y, int m, int d) {
    return (y == 0 || (y >= 1000 && y <= 2999)) && m >= 1 && m <= 12 && d >= 1 &&
           d <= days_in_month(y, m);
}

/* 2026-11-25, 25/11/2026, 11/25/2026, 25.11.2026 (separators '-', '/', '.'). */
static int try_date_numeric(struct scan *sc, size_t i, struct match *m) {
    size_t p = i, la = count_digits(sc, p, 4);
    if (la == 0 || la == 3 || la > 4)
        return 0;
    int sep = at(sc, p + la);
    if (!in_set(sep, "-/."))
        return 0;
    p += la + 1;
    size_t lb = count_digits(sc, p, 2);
    if (lb == 0 || lb > 2 || at(sc, p + lb) != sep)
        return 0;
    size_t pb = p;
    p += lb + 1;
    size_t lc = count_digits(sc, p, 4);
    int a = read_int(sc, i, la), b = read_int(sc, pb, lb), c = read_int(sc, p, lc);
    size_t end = p + lc;
    int y = 0, mo = 0, d = 0;
    if (la == 4 && lc >= 1 && lc <= 2) {
        y = a, mo = b, d = c;
        if (!valid_date(y, mo, d))
            return 0;
        /* the date of an ISO 8601 date-time ("2026-11-25T10:00") */
        if (at(sc, end) == 'T' && is_digit(at(sc, end + 1)))
            goto found;
    } else if (la <= 2 && lc == 4) {
        y = c;
        if (sep == '.') {
            d = a, mo = b; /* dotted dates are day first wherever they are written */
        } else if (a > 12) {
            d = a, mo = b;
        } else if (b > 12) {
            mo = a, d = b;
        } else {
            /* 05/06/2026: May or June. A date, but its ISO form is unknown unless both
             * readings agree. */
            if (!valid_date(y, a, b) && !valid_date(y, b, a))
                return 0;
            if (a != b)
                y = 0;
            mo = a, d = b;
        }
        if (y && !valid_date(y, mo, d))
            return 0;
    } else {
        return 0;
    }
    if (!ends_clean(sc, end))
        return 0;
found:
    m->kind = K_DATE;
    m->start = i;
    m->end = end;
    m->emit = 1;
    m->y = y, m->m = mo, m->d = d;
    return 1;
}

/* "st", "nd", "rd", "th" after a day number: bytes taken. */
static size_t ordinal_at(const struct scan *sc, size_t p) {
    static const char *const suffixes[] = {"st", "nd", "rd", "th"};
    for (size_t k = 0; k < 4; k++)
        if (starts_with(sc, p, suffixes[k]) && !word_char_at(sc, p + 2))
            return 2;
    return 0;
}

/* A year after a day or month: [","] " " YYYY, a whole number. Bytes taken, or 0. */
static size_t year_at(const struct scan *sc, size_t p, int *year) {
    size_t q = p;
    if (at(sc, q) == ',')
        q++;
    if (at(sc, q) != ' ')
        return 0;
    q++;
    if (count_digits(sc, q, 4) != 4 || !ends_clean(sc, q + 4) || at(sc, q + 4) == ':')
        return 0;
    int y = read_int(sc, q, 4);
    if (y < 1000 || y > 2999)
        return 0;
    *year = y;
    return q + 4 - p;
}

/* "25 November 2026", "25th Nov. 2026", "25. November", "25 of November, 2026". */
static int try_date_day_first(struct scan *sc, size_t i, struct match *m) {
    size_t ld = count_digits(sc, i, 2);
    if (ld == 0 || ld > 2)
        return 0;
    int d = read_int(sc, i, ld), y = 0;
    size_t p = i + ld;
    p += ordinal_at(sc, p);
    if (at(sc, p) == '.')
        p++;
    if (at(sc, p) != ' ')
        return 0;
    p++;
    if (starts_with(sc, p, "of "))
        p += 3;
    size_t end;
    int mo = month_at(sc, p, &end);
    if (!mo)
        return 0;
    end += year_at(sc, end, &y);
    if (!valid_date(y, mo, d))
        return 0;
    m->kind = K_DATE;
    m->start = i;
    m->end = end;
    m->emit = 1;
    m->y = y, m->m = mo, m->d = d;
    return 1;
}

/* "Nov 25, 2026", "November 25th 2026", "November 25". */
static int try_date_month_first(struct scan *sc, size_t i, struct match *m) {
    size_t p;
    int mo = month_at(sc, i, &p), y = 0;
    if (!mo || at(sc, p) != ' ')
        return 0;
    p++;
    size_t ld = count_digits(sc, p, 2);
    if (ld == 0 || ld > 2)
        return 0;
    int d = read_int(sc, p, ld);
    p += ld;
    p += ordinal_at(sc, p);
    if (!ends_clean(sc, p) || at(sc, p) == ':')
        return 0; /* "May 10:30", "Nov 25-27" starts a range we don't read */
    p += year_at(sc, p, &y);
    if (!valid_date(y, mo, d))
        return 0;
    m->kind = K_DATE;
    m->start = i;
    m->end = p;
    m->emit = 1;
    m->y = y, m->m = mo, m->d = d;
    return 1;
}

/* ---------------------------------------------------------------- money amounts */

static const struct {
    const char *symbol;
    const char *code;
    int suffix_only; /* written after the number only */
} symbols[] = {
    {"US$", "USD", 0}, {"CA$", "CAD", 0}, {"AU$", "AUD", 0}, {"NZ$", "NZD", 0}, {"HK$", "HKD", 0},
    {"MX$", "MXN", 0}, {"C$", "CAD", 0},  {"A$", "AUD", 0},  {"S$", "SGD", 0},  {"R$", "BRL", 0},
    {"$", "USD", 0},   {"€", "EUR", 0},   {"£", "GBP", 0},   {"¥", "JPY", 0},   {"₹", "INR", 0},
    {"₽", "RUB", 0}, {"₩", "KRW", 0},   {"₺", "TRY", 0},   {"₪", "ILS", 0},   {"₫", "VND", 0},
    {"₴", "UAH", 0},   {"₦", "NGN", 0},   {"₱", "PHP", 0},   {"฿", "THB", 0},   {"zł", "PLN", 1},
    {"Kč", "CZK", 1},
};

static const char *const codes[] = {
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "CNY", "HKD", "SGD", "SEK",
    "NOK", "DKK", "ISK", "PLN", "CZK", "HUF", "RON", "BGN", "RUB", "UAH", "TRY", "INR",
    "BRL", "MXN", "ZAR", "KRW", "ILS", "THB", "IDR", "MYR", "PHP", "VND", "AED", "SAR",
    "QAR", "EGP", "NGN", "KES", "ARS", "CLP", "COP", "PEN", "TWD",
};

/* A currency symbol at p: its ISO code, *end after it. A symbol of letters ("US$", "zł")
 * is a whole word: nothing word-like right after it unless it ends in '$'. */
static const char *symbol_at(const struct scan *sc, size_t p, int prefix, size_t *end) {
    for (size_t k = 0; k < sizeof symbols / sizeof symbols[0]; k++) {
        size_t n = strlen(symbols[k].symbol);
        if (prefix && symbols[k].suffix_only)
            continue;
        if (n > sc->len - p || memcmp(sc->s + p, symbols[k].symbol, n) != 0)
            continue;
        if (is_alpha(symbols[k].symbol[n - 1]) || sc->s[p + n - 1] >= 0x80) {
            if (!prefix && word_char_at(sc, p + n))
                continue;
        }
        *end = p + n;
        return symbols[k].code;
    }
    return NULL;
}

/* An ISO 4217 code at p, in capitals and not part of a longer word ("EUROPE"). */
static const char *code_at(const struct scan *sc, size_t p, size_t *end) {
    if (sc->len - p < 3 || !is_upper(sc->s[p]) || !is_upper(sc->s[p + 1]) ||
        !is_upper(sc->s[p + 2]) || is_alpha(at(sc, p + 3)) || (at(sc, p + 3) >= 0x80))
        return NULL;
    for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++) {
        if (memcmp(sc->s + p, codes[k], 3) == 0) {
            *end = p + 3;
            return codes[k];
        }
    }
    return NULL;
}

/* A space between a number and its currency: ' ', no-break space or narrow no-break
 * space. Bytes taken (0 when there is none). */
static size_t space_at(const struct scan *sc, size_t p) {
    if (at(sc, p) == ' ')
        return 1;
    if (at(sc, p) == 0xc2 && at(sc, p + 1) == 0xa0)
        return 2;
    if (at(sc, p) == 0xe2 && at(sc, p + 1) == 0x80 && at(sc, p + 2) == 0xaf)
        return 3;
    return 0;
}

/* A number written with thousands separators and a decimal part in any of the common
 * conventions: 1,200.00  1.234,56  1 234,56  1'234.50  12,50  1,200. Separators are told
 * apart as people read them: of two kinds, the last is the decimal one; one kind used
 * once is decimal unless exactly three digits follow it. */
static int parse_number(const struct scan *sc, size_t p, size_t *end, double *value) {
    size_t group_len[NUMBER_MAX_GROUPS], group_at[NUMBER_MAX_GROUPS], digits = 0, n_groups = 0;
    int sep[NUMBER_MAX_GROUPS]; /* separator before group k (k >= 1): ',' '.' '\'' ' ' */
    size_t q = p;
    for (;;) {
        size_t g = count_digits(sc, q, NUMBER_MAX_DIGITS);
        if (g == 0 || (digits += g) > NUMBER_MAX_DIGITS || n_groups == NUMBER_MAX_GROUPS)
            return 0;
        group_at[n_groups] = q;
        group_len[n_groups++] = g;
        q += g;
        int c = at(sc, q);
        size_t sn = 0;
        if ((c == ',' || c == '.' || c == '\'') && is_digit(at(sc, q + 1))) {
            sn = 1;
        } else if ((sn = space_at(sc, q)) != 0) {
            /* a space groups thousands only: exactly three digits, then no more */
            if (count_digits(sc, q + sn, 4) != 3)
                break;
            c = ' ';
        } else {
            break;
        }
        if (n_groups == NUMBER_MAX_GROUPS)
            return 0;
        sep[n_groups] = c;
        q += sn;
    }
    *end = q;
    size_t int_groups = n_groups;
    if (n_groups >= 2) {
        int last = sep[n_groups - 1];
        size_t same = 0;
        for (size_t k = 1; k < n_groups; k++)
            same += sep[k] == last;
        int decimal = 0;
        if (last == '.' || last == ',') {
            if (same > 1)
                decimal = 0;
            else if (n_groups > 2)
                decimal = 1; /* 1,234.56: another kind came before */
            else
                decimal = group_len[1] != 3 || (group_len[0] == 1 && sc->s[p] == '0');
        }
        if (decimal) {
            if (same > 1 || group_len[n_groups - 1] > 4)
                return 0;
            int_groups = n_groups - 1;
        }
        /* The integer part: 1-3 digits, then groups of exactly three, one separator. */
        if (int_groups > 1) {
            if (group_len[0] > 3 || (sc->s[p] == '0'))
                return 0;
            for (size_t k = 1; k < int_groups; k++)
                if (group_len[k] != 3 || sep[k] != sep[1])
                    return 0;
        }
    }
    /* All digits as one integer (at most 15: exact), then one division, so 1234.56 is
     * the double nearest 1234.56 and not 1234 + 0.56 rounded twice. */
    int64_t units = 0, scale = 1;
    for (size_t k = 0; k < n_groups; k++) {
        for (size_t d = 0; d < group_len[k]; d++) {
            units = units * 10 + (sc->s[group_at[k] + d] - '0');
            if (k >= int_groups)
                scale *= 10;
        }
    }
    *value = (double)units / (double)scale;
    return 1;
}

/* "k", "M", "bn", " million" after a prefixed amount: the factor, *end after it. */
static double multiplier_at(const struct scan *sc, size_t p, size_t *end) {
    static const struct {
        const char *word;
        double factor;
        int spaced; /* may stand after a space */
    } mult[] = {
        {"thousand", 1e3, 1}, {"million", 1e6, 1}, {"billion", 1e9, 1}, {"mn", 1e6, 0},
        {"bn", 1e9, 0},       {"k", 1e3, 0},       {"m", 1e6, 0},       {"b", 1e9, 0},
    };
    for (size_t k = 0; k < sizeof mult / sizeof mult[0]; k++) {
        for (size_t sp = 0; sp <= (size_t)mult[k].spaced; sp++) {
            size_t q = p + sp, n = strlen(mult[k].word);
            if (sp && at(sc, p) != ' ')
                continue;
            if (starts_with(sc, q, mult[k].word) && !word_char_at(sc, q + n)) {
                *end = q + n;
                return mult[k].factor;
            }
        }
    }
    *end = p;
    return 1;
}

/* "$12.50", "EUR 1,200.00", "US$5", "-£3", "$2.5M". */
static int try_amount_prefix(struct scan *sc, size_t i, struct match *m) {
    size_t p = i, q;
    int negative = 0;
    if (at(sc, p) == '-') {
        negative = 1;
        p++;
    }
    const char *code = symbol_at(sc, p, 1, &q);
    if (!code)
        code = code_at(sc, p, &q);
    if (!code)
        return 0;
    q += space_at(sc, q);
    double v;
    if (!is_digit(at(sc, q)) || !parse_number(sc, q, &q, &v))
        return 0;
    v *= multiplier_at(sc, q, &q);
    if (!ends_clean(sc, q))
        return 0;
    m->kind = K_AMOUNT;
    m->start = i;
    m->end = q;
    m->emit = 1;
    m->value = negative ? -v : v;
    m->code = code;
    return 1;
}

/* A currency named in words after a number ("5 dollars"): its code, *end after it.
 * Not "pounds": as often a weight as money. */
static const char *currency_word_at(const struct scan *sc, size_t p, size_t *end) {
    static const struct {
        const char *word, *code;
    } words[] = {{"dollars", "USD"}, {"dollar", "USD"}, {"euros", "EUR"}, {"euro", "EUR"}};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++) {
        size_t n = strlen(words[k].word);
        if (starts_with(sc, p, words[k].word) && !word_char_at(sc, p + n)) {
            *end = p + n;
            return words[k].code;
        }
    }
    return NULL;
}

/* "12,50 €", "1.234,56 EUR", "100 CHF", "-5 zł", "20 euros". */
static int try_amount_suffix(struct scan *sc, size_t i, struct match *m) {
    size_t p = i, q;
    int negative = 0;
    if (at(sc, p) == '-') {
        negative = 1;
        p++;
    }
    double v;
    if (!is_digit(at(sc, p)) || !parse_number(sc, p, &q, &v))
        return 0;
    size_t space = space_at(sc, q), end;
    q += space;
    const char *code = symbol_at(sc, q, 0, &end);
    if (!code)
        code = code_at(sc, q, &end);
    if (!code && space)
        code = currency_word_at(sc, q, &end);
    if (!code)
        return 0;
    m->kind = K_AMOUNT;
    m->start = i;
    m->end = end;
    m->emit = 1;
    m->value = negative ? -v : v;
    m->code = code;
    return 1;
}

/* ---------------------------------------------------------------- phone numbers */

/* Whether a word that announces a phone number stands shortly before p. */
static int phone_cue_before(const struct scan *sc, size_t p) {
    static const char *const cues[] = {"tel",    "tele", "telephone", "phone", "ph",       "call",
                                       "mobile", "mob",  "cell",      "fax",   "whatsapp", "sms",
                                       "text",   "txt",  "dial",      "ring",  "telefon",  "tlf"};
    size_t from = p > CUE_WINDOW ? p - CUE_WINDOW : 0;
    size_t q = from;
    if (q > 0 && is_alpha(sc->s[q - 1]))
        while (q < p && is_alpha(sc->s[q]))
            q++; /* a word cut by the window is not one */
    while (q < p) {
        if (!is_alpha(sc->s[q])) {
            q++;
            continue;
        }
        size_t w = q;
        while (q < p && is_alpha(sc->s[q]))
            q++;
        for (size_t k = 0; k < sizeof cues / sizeof cues[0]; k++)
            if (strlen(cues[k]) == q - w && starts_with(sc, w, cues[k]))
                return 1;
    }
    return 0;
}

/* Whether the digits at p, after a space, start something other than more of a phone
 * number: "+44 20 7946 0958 2026-11-25", "555-1234 10:30", "030 1234567 12,50 €". */
static int starts_other(struct scan *sc, size_t p) {
    struct match m;
    size_t g = count_digits(sc, p, 4);
    if (g <= 2 && in_set(at(sc, p + g), ":h") && is_digit(at(sc, p + g + 1)))
        return 1; /* a time */
    return try_date_numeric(sc, p, &m) || try_date_day_first(sc, p, &m) ||
           try_amount_suffix(sc, p, &m);
}

/* +44 20 7946 0958, +1 (555) 123-4567, (555) 123-4567, 555-123-4567, 030 1234567,
 * 06 12 34 56 78, 555-1234; a bare run of digits only after "call", "tel" and the like.
 * Dates, times, decimals, IP addresses, thousands and long ids are turned away. */
static int try_phone(struct scan *sc, size_t i, struct match *m) {
    if (i > 0) {
        int pc = sc->s[i - 1];
        if (in_set(pc, "#@/=&_~%$\\"))
            return 0; /* "#123456789", "id=5551234567", a path */
        if (i > 1 && in_set(pc, " .,'/:-") && is_digit(sc->s[i - 2]))
            return 0; /* the tail of a longer number: a card, an account */
    }
    size_t p = i, group_len[PHONE_MAX_GROUPS], group_at[PHONE_MAX_GROUPS], n_groups = 0, digits = 0;
    int plus = 0, paren_first = 0, sep[PHONE_MAX_GROUPS], parens = 0;
    if (at(sc, p) == '+') {
        plus = 1;
        p++;
        if (!is_digit(at(sc, p)))
            return 0;
    }
    for (;;) {
        size_t g;
        if (at(sc, p) == '(') {
            g = count_digits(sc, p + 1, 5);
            if (g == 0 || g > 5 || at(sc, p + 1 + g) != ')' || parens++)
                return 0;
            paren_first = n_groups == 0;
            group_at[n_groups] = p + 1;
            p += g + 2;
        } else {
            g = count_digits(sc, p, PHONE_MAX_DIGITS);
            if (g == 0)
                return 0;
            group_at[n_groups] = p;
            p += g;
        }
        if ((digits += g) > PHONE_MAX_DIGITS)
            return 0;
        group_len[n_groups++] = g;
        int c = at(sc, p), more = 0;
        if (in_set(c, " -./") && (is_digit(at(sc, p + 1)) || at(sc, p + 1) == '('))
            more = c != ' ' || !starts_other(sc, p + 1);
        else if (sc->s[p - 1] == ')' && (is_digit(c) || c == '('))
            more = 2; /* "(555)123-4567" */
        if (!more)
            break;
        if (n_groups == PHONE_MAX_GROUPS)
            return 0;
        sep[n_groups] = more == 1 ? c : ')';
        p += more == 1;
    }
    if (sc->s[p - 1] == ')' || digits < PHONE_MIN_DIGITS || digits > PHONE_MAX_DIGITS)
        return 0;
    if (!ends_clean(sc, p) || at(sc, p) == '%')
        return 0;

    int one_sep = 1;
    for (size_t k = 2; k < n_groups; k++)
        one_sep &= sep[k] == sep[1];
    if (!plus && !parens && n_groups == 3 && one_sep &&
        ((group_len[0] <= 2 && group_len[1] <= 2 && group_len[2] == 4) ||
         (group_len[0] == 4 && group_len[1] <= 2 && group_len[2] <= 2)))
        return 0; /* a date, valid or not */
    if (n_groups == 4 && one_sep && sep[1] == '.' && group_len[0] <= 3 && group_len[1] <= 3 &&
        group_len[2] <= 3 && group_len[3] <= 3)
        return 0; /* an IP address */
    if (!plus && !parens && n_groups >= 2 && one_sep && (sep[1] == '.' || sep[1] == ' ') &&
        group_len[0] <= 3) {
        int thousands = 1;
        for (size_t k = 1; k < n_groups; k++)
            thousands &= group_len[k] == 3;
        if (thousands)
            return 0; /* 1.234.567, 12 345 678 */
    }
    if (!plus && n_groups == 2 && one_sep && sep[1] == '.')
        return 0; /* a decimal number */

    /* North American area codes start with 2-9 ("NXX"; exchanges do too, but "555-123-4567"
     * is how everyone writes an example, so they are not held to it). */
    size_t g0 = n_groups == 4 && group_len[0] == 1 && sc->s[i] == '1';
    int nanp = sc->s[group_at[g0]] >= '2';
    int ok = 0;
    if (plus || paren_first)
        ok = 1;
    else if (sc->s[i] == '0' && group_len[0] >= 2 && n_groups >= 2)
        ok = 1; /* a trunk prefix: 030 1234567, 06 12 34 56 78, 0044 20 ... */
    else if (n_groups == 3 && group_len[0] == 3 && group_len[1] == 3 && group_len[2] == 4)
        ok = nanp; /* North American 555-123-4567 */
    else if (g0 && group_len[1] == 3 && group_len[2] == 3 && group_len[3] == 4)
        ok = nanp; /* 1-800-555-1234 */
    else if (n_groups == 2 && group_len[0] == 3 && group_len[1] == 4 && sep[1] == '-')
        ok = sc->s[i] >= '2'; /* 555-1234 */
    if (!ok && !phone_cue_before(sc, i))
        return 0;
    m->kind = K_PHONE;
    m->start = i;
    m->end = p;
    m->emit = 1;
    return 1;
}

/* ---------------------------------------------------------------- the scan */

/* Tries every scanner that can start with the character at i, most specific first, so
 * that the first to match claims its bytes (a date is never also read as a phone). */
static int try_at(struct scan *sc, size_t i, struct match *m) {
    int c = sc->s[i];
    if (is_alpha(c))
        return try_url(sc, i, m) || try_email(sc, i, m) || try_date_month_first(sc, i, m) ||
               try_amount_prefix(sc, i, m);
    if (is_digit(c)) {
        if (try_email(sc, i, m))
            return 1;
        if (!number_start_ok(sc, i))
            return 0;
        return try_date_numeric(sc, i, m) || try_date_day_first(sc, i, m) ||
               try_amount_suffix(sc, i, m) || try_phone(sc, i, m);
    }
    if (c == '+' || c == '(')
        return try_phone(sc, i, m);
    if (c == '-')
        return try_amount_prefix(sc, i, m) || try_amount_suffix(sc, i, m);
    if (c == '$' || c >= 0x80)
        return try_amount_prefix(sc, i, m);
    return 0;
}

static json_t *item_json(const struct scan *sc, const struct match *m) {
    const char *text = (const char *)sc->s + m->start;
    size_t n = m->end - m->start;
    if (m->kind == K_URL || m->kind == K_EMAIL || m->kind == K_PHONE)
        return json_stringn(text, n);
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (json_object_set_new(o, "text", json_stringn(text, n)) != 0) {
        json_decref(o);
        return NULL;
    }
    int bad = 0;
    if (m->kind == K_DATE && m->y) {
        char iso[16];
        snprintf(iso, sizeof iso, "%04d-%02d-%02d", m->y, m->m, m->d);
        bad = json_object_set_new(o, "iso", json_string(iso)) != 0;
    } else if (m->kind == K_AMOUNT) {
        bad = json_object_set_new(o, "value", json_real(m->value)) != 0 ||
              json_object_set_new(o, "currency", json_string(m->code)) != 0;
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void emit(struct scan *sc, const struct match *m) {
    enum kind k = m->kind;
    if (!m->emit || sc->n[k] >= MAX_ITEMS)
        return;
    /* Every scanner returns whole, valid UTF-8 characters, so a NULL here is memory. */
    json_t *item = item_json(sc, m);
    if (!item || (!sc->arr[k] && !(sc->arr[k] = json_array())) ||
        json_array_append_new(sc->arr[k], item) != 0) {
        if (item && !sc->arr[k])
            json_decref(item);
        sc->rc = AM_ENOMEM;
        return;
    }
    sc->n[k]++;
}

am_rc am_extract(const char *text, size_t len, json_t *obj, size_t *found) {
    if (found)
        *found = 0;
    if (!json_is_object(obj) || (!text && len))
        return AM_EINVAL;
    struct scan sc = {.s = (const unsigned char *)text, .len = len, .rc = AM_OK};
    size_t i = 0, added = 0;
    while (i < len && sc.rc == AM_OK) {
        int full = 1;
        for (int k = 0; k < K_COUNT; k++)
            full &= sc.n[k] >= MAX_ITEMS;
        if (full)
            break;
        struct match m;
        if (!word_before(&sc, i) && try_at(&sc, i, &m)) {
            emit(&sc, &m);
            i = m.end;
            continue;
        }
        uint32_t c;
        size_t n = am_utf8_decode(sc.s + i, len - i, &c);
        i += n ? n : 1;
    }
    am_rc rc = sc.rc;
    int k = 0;
    for (; rc == AM_OK && k < K_COUNT; k++) {
        if (!sc.arr[k])
            continue;
        json_t *arr = sc.arr[k];
        sc.arr[k] = NULL;
        if (json_object_set_new(obj, kind_key[k], arr) != 0) /* it took arr either way */
            rc = AM_ENOMEM;
        else
            added += sc.n[k];
    }
    if (rc != AM_OK) {
        /* Leave obj as it came: no half of an answer. */
        for (int j = 0; j < k; j++)
            if (sc.n[j])
                json_object_del(obj, kind_key[j]);
        for (int j = 0; j < K_COUNT; j++)
            if (sc.arr[j])
                json_decref(sc.arr[j]);
        return rc;
    }
    if (found)
        *found = added;
    return AM_OK;
}
