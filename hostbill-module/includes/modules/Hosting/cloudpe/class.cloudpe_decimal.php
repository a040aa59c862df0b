<?php

/**
 * Exact decimal strings for money: never floats. PHP's bcmath is not in every HostBill PHP (this
 * project's CI PHP lacks it), so sums and differences are done here, digit by digit, on strings
 * such as "0.1234". Only what the usage import needs: check, normalise, compare, add, subtract.
 *
 * A decimal here is an optional "-", 1 to 18 integer digits, optionally "." and 1 to 10 fraction
 * digits (CloudPe's amounts and the ledger's DECIMAL(28,10) columns both fit).
 */
final class cloudpe_decimal
{
    /** Most fraction digits kept (the ledger's DECIMAL scale). */
    const SCALE = 10;
    /** A non-negative amount as the host's report may carry it. */
    const AMOUNT = '/^(0|[1-9][0-9]{0,17})(\.[0-9]{1,10})?$/';
    /** A signed decimal (sums and differences). */
    const SIGNED = '/^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,10})?$/';

    /** Whether `$text` is a non-negative amount in the strict form (no sign, exponent or spaces). */
    public static function isAmount($text)
    {
        return is_string($text) && preg_match(self::AMOUNT, $text) === 1;
    }

    /**
     * `$a` in its shortest form: no trailing fraction zeros, "0" for zero, no "-0".
     *
     * @throws InvalidArgumentException when it is not a decimal
     */
    public static function normal($a)
    {
        list($negative, $digits) = self::parse($a);
        return self::format($negative, $digits);
    }

    /** -1, 0 or 1 as `$a` is less than, equal to or greater than `$b`. */
    public static function compare($a, $b)
    {
        list($na, $da) = self::parse($a);
        list($nb, $db) = self::parse($b);
        if ($na !== $nb) {
            return $na ? -1 : 1;
        }
        $c = self::compareDigits($da, $db);
        return $na ? -$c : $c;
    }

    /** `$a` + `$b`, exactly. */
    public static function add($a, $b)
    {
        list($na, $da) = self::parse($a);
        list($nb, $db) = self::parse($b);
        if ($na === $nb) {
            return self::format($na, self::addDigits($da, $db));
        }
        // Different signs: the larger magnitude minus the smaller, with its sign.
        if (self::compareDigits($da, $db) >= 0) {
            return self::format($na, self::subDigits($da, $db));
        }
        return self::format($nb, self::subDigits($db, $da));
    }

    /** `$a` − `$b`, exactly. */
    public static function sub($a, $b)
    {
        list($nb, $db) = self::parse($b);
        return self::add($a, self::format(!$nb, $db));
    }

    /**
     * [negative, digits]: the value times 10^SCALE as a string of digits, zero-padded to a fixed
     * width so that strings compare and add column by column.
     *
     * @throws InvalidArgumentException
     */
    private static function parse($a)
    {
        $a = is_int($a) ? (string) $a : $a;
        if (!is_string($a) || !preg_match(self::SIGNED, $a)) {
            throw new InvalidArgumentException('not an exact decimal: ' . (is_scalar($a) ? substr((string) $a, 0, 40) : gettype($a)));
        }
        $negative = $a[0] === '-';
        $a = ltrim($a, '-');
        $parts = explode('.', $a, 2);
        $fraction = str_pad(isset($parts[1]) ? $parts[1] : '', self::SCALE, '0');
        $digits = str_pad($parts[0] . $fraction, 20 + self::SCALE, '0', STR_PAD_LEFT);
        if (trim($digits, '0') === '') {
            $negative = false;
        }
        return array($negative, $digits);
    }

    private static function format($negative, $digits)
    {
        $digits = ltrim($digits, '0');
        $digits = str_pad($digits, self::SCALE + 1, '0', STR_PAD_LEFT);
        $integer = substr($digits, 0, -self::SCALE);
        $fraction = rtrim(substr($digits, -self::SCALE), '0');
        $text = $integer . ($fraction !== '' ? '.' . $fraction : '');
        return ($negative && $text !== '0' ? '-' : '') . $text;
    }

    private static function compareDigits($a, $b)
    {
        $width = max(strlen($a), strlen($b));
        $c = strcmp(str_pad($a, $width, '0', STR_PAD_LEFT), str_pad($b, $width, '0', STR_PAD_LEFT));
        return $c < 0 ? -1 : ($c > 0 ? 1 : 0);
    }

    private static function addDigits($a, $b)
    {
        $width = max(strlen($a), strlen($b)) + 1;
        $a = str_pad($a, $width, '0', STR_PAD_LEFT);
        $b = str_pad($b, $width, '0', STR_PAD_LEFT);
        $out = '';
        $carry = 0;
        for ($i = $width - 1; $i >= 0; $i--) {
            $sum = (int) $a[$i] + (int) $b[$i] + $carry;
            $out = (string) ($sum % 10) . $out;
            $carry = intdiv($sum, 10);
        }
        return $out;
    }

    /** `$a` − `$b` for digit strings with `$a` >= `$b`. */
    private static function subDigits($a, $b)
    {
        $width = max(strlen($a), strlen($b));
        $a = str_pad($a, $width, '0', STR_PAD_LEFT);
        $b = str_pad($b, $width, '0', STR_PAD_LEFT);
        $out = '';
        $borrow = 0;
        for ($i = $width - 1; $i >= 0; $i--) {
            $d = (int) $a[$i] - (int) $b[$i] - $borrow;
            $borrow = $d < 0 ? 1 : 0;
            $out = (string) ($d + 10 * $borrow) . $out;
        }
        return $out;
    }
}
