<?php

/**
 * Text that came from elsewhere (CloudPe's emails, logins, group names and error excerpts, the
 * host's messages), made fit for where the module puts it:
 *
 *  - plain(): for every place, a log line as much as a page. Invalid UTF-8 becomes U+FFFD; ANSI
 *    escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ESC \`, two-byte `ESC x`) and
 *    control characters (C0 but newline and tab, DEL, C1, and the bidirectional overrides and
 *    isolates U+202A-U+202E, U+2066-U+2069, which reorder what the admin reads) are removed.
 *    cloudpe_host::scrubText applies it, so every text the module scrubs is also plain.
 *  - html(): plain(), then HTML-escaped (`& < > " '`), for text HostBill shows in its admin pages:
 *    addError/addInfo, the account's details, its log, the system log, tickets and admin notes,
 *    the cron's output. HostBill's templates are encoded, so whether they escape is unknown; the
 *    module escapes CloudPe's texts where it takes them from a report, once (cloudpe::reportText).
 *  - column(): for HostBill's tables, which are `CHARSET=utf8` (MySQL's three-byte UTF-8, see
 *    docs/hostbill.md): a character beyond U+FFFF (an emoji in a group name) would make a strict
 *    server refuse the whole row and a lenient one cut the text there; it becomes U+FFFD.
 *
 * Only PHP's core functions: no mbstring, which not every HostBill server has.
 */
final class cloudpe_text
{
    const REPLACEMENT = "\u{FFFD}";

    /** `$text` without ANSI escapes and control characters, as valid UTF-8. */
    public static function plain($text)
    {
        $text = self::utf8((string) $text);
        if ($text === '' || !preg_match('/[\x00-\x08\x0B-\x1F\x7F\x{80}-\x{9F}\x{202A}-\x{202E}\x{2066}-\x{2069}]/u', $text)) {
            return $text;
        }
        $text = preg_replace(array(
            // CSI: ESC [ (or the 8-bit CSI) parameters, intermediates, one final byte.
            '/(?:\x1B\[|\x{9B})[\x30-\x3F]*[\x20-\x2F]*[\x40-\x7E]?/u',
            // OSC, DCS, SOS, PM, APC: ESC ] P X ^ _ (or their 8-bit forms) up to BEL or ST.
            '/(?:\x1B[\]PX^_]|[\x{9D}\x{90}\x{98}\x{9E}\x{9F}])[^\x07\x1B\x{9C}]*(?:\x07|\x1B\\\\|\x{9C})?/u',
            // Any other escape: ESC and the byte after it.
            '/\x1B[\x20-\x7E]?/u',
            // What is left of the control characters.
            '/[\x00-\x08\x0B-\x1F\x7F\x{80}-\x{9F}\x{202A}-\x{202E}\x{2066}-\x{2069}]/u',
        ), '', $text);
        return (string) $text;
    }

    /** plain(`$text`), HTML-escaped for an admin page. */
    public static function html($text)
    {
        return htmlspecialchars(self::plain($text), ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML401, 'UTF-8');
    }

    /** `$text` with every character beyond U+FFFF replaced, for HostBill's three-byte utf8 tables. */
    public static function column($text)
    {
        $text = self::utf8((string) $text);
        return (string) preg_replace('/[\x{10000}-\x{10FFFF}]/u', self::REPLACEMENT, $text);
    }

    /** `$text` as valid UTF-8: each invalid sequence becomes U+FFFD. */
    private static function utf8($text)
    {
        if ($text === '' || preg_match('//u', $text)) {
            return $text;
        }
        // htmlspecialchars with ENT_SUBSTITUTE is PHP's core UTF-8 repair; nothing else is escaped
        // with ENT_NOQUOTES but & < >, which the decode turns back.
        return htmlspecialchars_decode(htmlspecialchars($text, ENT_NOQUOTES | ENT_SUBSTITUTE, 'UTF-8'), ENT_NOQUOTES);
    }
}
