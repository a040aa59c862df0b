<?php

/**
 * Raised by cloudpe_report_reader when the host's output is not a report it can take: not JSON,
 * not one object, a member or decision larger than PHP may hold, or a decision the caller refused.
 */
class cloudpe_report_error extends Exception
{
    /** @var bool whether the output is not a report at all (as opposed to a report too large) */
    public $notReport;

    public function __construct($message, $notReport = true)
    {
        parent::__construct($message);
        $this->notReport = (bool) $notReport;
    }
}

/**
 * Reads the host's report (one JSON object, docs/hostbill.md "The sync's report") as it arrives,
 * in chunks, without ever holding all of it: each member's value is decoded on its own, and the
 * elements of a `decisions` array are decoded one by one and handed to a callback as soon as each
 * is complete, so a sync of 100,000 accounts never has its decisions in memory at once.
 *
 * The output is treated as hostile: it must be exactly one JSON object (whitespace around it
 * allowed) whose member names appear once; no member value and no decision may be larger than
 * `$maxPart` bytes, and the members kept (everything but streamed decisions) may not exceed
 * `$maxPart` bytes together. Anything else is a cloudpe_report_error naming the problem and where.
 *
 * Written for PHP 7.0 syntax, as class.cloudpe_host.php.
 */
final class cloudpe_report_reader
{
    const EXPECT_OPEN = 0;
    const EXPECT_KEY = 1;
    const EXPECT_COLON = 2;
    const EXPECT_VALUE = 3;
    const AFTER_MEMBER = 4;
    const EXPECT_LIST = 5;
    const EXPECT_ELEMENT = 6;
    const AFTER_ELEMENT = 7;
    const DONE = 8;

    const WHITESPACE = " \t\r\n";

    /** @var callable|null fn(array $decision, int $index): void; null: decisions are kept */
    private $onDecision;
    /** @var string the member whose elements are streamed: `decisions` (sync) or `usage` (usage) */
    private $streamed;
    /** @var int */
    private $maxPart;
    /** @var string bytes not consumed yet */
    private $buf = '';
    /** @var int bytes of the output before $buf */
    private $offset = 0;
    /** @var int */
    private $state = self::EXPECT_OPEN;
    /** @var bool whether the key just read is the first of the object (`{}` allowed) */
    private $first = true;
    /** @var string|null the member being read */
    private $key = null;
    /** @var array members read so far */
    private $members = array();
    /** @var int bytes of the kept members */
    private $kept = 0;
    /** @var int decisions read */
    private $decisions = 0;
    /** @var array|null a value being scanned: [kind, position, depth, in_string] */
    private $scan = null;

    /**
     * @param int $maxPart most bytes of one member's value or one decision, and of the kept members together
     * @param callable|null $onDecision receives each element of `decisions` (an array) and its index;
     *        null keeps them in the report as json_decode would
     * @param string $streamed the list member whose elements are streamed (`decisions`, or a usage
     *        report's `usage`)
     */
    public function __construct($maxPart, $onDecision = null, $streamed = 'decisions')
    {
        $this->maxPart = max(1024, (int) $maxPart);
        $this->onDecision = $onDecision;
        $this->streamed = (string) $streamed;
    }

    /** Decisions read so far. */
    public function decisions()
    {
        return $this->decisions;
    }

    /**
     * Reads the next bytes of the output.
     *
     * @throws cloudpe_report_error
     */
    public function feed($chunk)
    {
        if ($this->buf === '') {
            $this->buf = (string) $chunk;
        } else {
            $this->buf .= (string) $chunk;
        }
        $pos = 0;
        $length = strlen($this->buf);
        while (true) {
            if ($this->scan === null) {
                $pos += strspn($this->buf, self::WHITESPACE, $pos);
                if ($pos >= $length) {
                    break;
                }
            }
            $c = $this->buf[$pos];
            switch ($this->state) {
                case self::EXPECT_OPEN:
                    $this->expect($c, '{', $pos, 'the report is not a JSON object');
                    $this->state = self::EXPECT_KEY;
                    $pos++;
                    continue 2;
                case self::EXPECT_KEY:
                    if ($c === '}' && $this->first) {
                        $this->state = self::DONE;
                        $pos++;
                        continue 2;
                    }
                    $this->expect($c, '"', $pos, 'a member name was expected');
                    $end = $this->scanValue($pos, 'a member name');
                    if ($end === null) {
                        break 2;
                    }
                    $this->key = $this->decode(substr($this->buf, $pos, $end - $pos), 'a member name', $pos);
                    if (array_key_exists($this->key, $this->members) || ($this->key === $this->streamed && $this->decisions > 0)) {
                        throw new cloudpe_report_error("the member \"{$this->clip($this->key)}\" appears twice");
                    }
                    $this->first = false;
                    $this->state = self::EXPECT_COLON;
                    $pos = $end;
                    continue 2;
                case self::EXPECT_COLON:
                    $this->expect($c, ':', $pos, 'a colon was expected');
                    $this->state = ($this->key === $this->streamed && $this->onDecision !== null) ? self::EXPECT_LIST : self::EXPECT_VALUE;
                    $pos++;
                    continue 2;
                case self::EXPECT_VALUE:
                    $what = "the member \"{$this->clip($this->key)}\"";
                    $end = $this->scanValue($pos, $what);
                    if ($end === null) {
                        break 2;
                    }
                    $this->kept += $end - $pos;
                    if ($this->kept > $this->maxPart) {
                        throw new cloudpe_report_error("the report's members other than its decisions take more than " . self::bytes($this->maxPart) . ' (at ' . $what . ')', false);
                    }
                    $this->members[$this->key] = $this->decode(substr($this->buf, $pos, $end - $pos), $what, $pos);
                    $this->state = self::AFTER_MEMBER;
                    $pos = $end;
                    continue 2;
                case self::AFTER_MEMBER:
                    if ($c === ',') {
                        $this->state = self::EXPECT_KEY;
                    } else {
                        $this->expect($c, '}', $pos, 'a comma or the end of the report was expected');
                        $this->state = self::DONE;
                    }
                    $pos++;
                    continue 2;
                case self::EXPECT_LIST:
                    if ($c !== '[') {
                        // A report without decisions may say so with null; anything else is not a list.
                        $end = $this->scanValue($pos, "the member \"{$this->streamed}\"");
                        if ($end === null) {
                            break 2;
                        }
                        if ($this->decode(substr($this->buf, $pos, $end - $pos), "the member \"{$this->streamed}\"", $pos) !== null) {
                            throw new cloudpe_report_error("the member \"{$this->streamed}\" is not a list (at byte " . ($this->offset + $pos) . ')');
                        }
                        $this->members[$this->streamed] = null;
                        $this->state = self::AFTER_MEMBER;
                        $pos = $end;
                        continue 2;
                    }
                    $this->members[$this->streamed] = array();
                    $this->first = true;
                    $this->state = self::EXPECT_ELEMENT;
                    $pos++;
                    continue 2;
                case self::EXPECT_ELEMENT:
                    if ($c === ']' && $this->first) {
                        $this->state = self::AFTER_MEMBER;
                        $pos++;
                        continue 2;
                    }
                    $index = $this->decisions;
                    $what = ($this->streamed === 'decisions' ? 'decision' : "{$this->streamed} row") . ' #' . ($index + 1);
                    $end = $this->scanValue($pos, $what);
                    if ($end === null) {
                        break 2;
                    }
                    $decision = $this->decode(substr($this->buf, $pos, $end - $pos), $what, $pos);
                    if (!is_array($decision)) {
                        throw new cloudpe_report_error("{$what} is not a JSON object (at byte " . ($this->offset + $pos) . ')');
                    }
                    $this->first = false;
                    $this->decisions++;
                    $this->state = self::AFTER_ELEMENT;
                    $pos = $end;
                    call_user_func($this->onDecision, $decision, $index);
                    continue 2;
                case self::AFTER_ELEMENT:
                    if ($c === ',') {
                        $this->state = self::EXPECT_ELEMENT;
                    } else {
                        $this->expect($c, ']', $pos, 'a comma or the end of the decisions was expected');
                        $this->state = self::AFTER_MEMBER;
                    }
                    $pos++;
                    continue 2;
                default:
                    throw new cloudpe_report_error('something follows the report (at byte ' . ($this->offset + $pos) . ')');
            }
        }
        // Drop what was consumed; a value being scanned keeps its start at 0.
        if ($pos > 0) {
            $this->buf = (string) substr($this->buf, $pos);
            $this->offset += $pos;
            if ($this->scan !== null) {
                $this->scan[1] -= $pos;
            }
        }
    }

    /**
     * The report, once the whole output was fed: its members (without the decisions handed to
     * the callback, if there was one).
     *
     * @throws cloudpe_report_error when the output ended before the report did
     */
    public function finish()
    {
        if ($this->state !== self::DONE) {
            throw new cloudpe_report_error($this->offset + strlen($this->buf) === 0 ? 'it printed nothing' : 'the report ends early (after byte ' . ($this->offset + strlen($this->buf)) . ')');
        }
        return $this->members;
    }

    /**
     * The end of the JSON value starting at `$start` in the buffer, or null when more bytes are
     * needed. Only its extent is found here (strings, escapes and nesting); json_decode judges it.
     *
     * @throws cloudpe_report_error when it is larger than `$maxPart`
     */
    private function scanValue($start, $what)
    {
        $buf = $this->buf;
        $length = strlen($buf);
        if ($this->scan === null) {
            $c = $buf[$start];
            if ($c === '{' || $c === '[') {
                $this->scan = array('nested', $start + 1, 1, false);
            } elseif ($c === '"') {
                $this->scan = array('string', $start + 1, 0, true);
            } else {
                $this->scan = array('scalar', $start, 0, false);
            }
        }
        list($kind, $pos, $depth, $inString) = $this->scan;
        $end = null;
        if ($kind === 'scalar') {
            $pos += strspn($buf, '-+.0123456789eEtrufalsn', $pos);
            if ($pos < $length) {
                $end = $pos;
            }
        } else {
            while ($pos < $length) {
                if ($inString) {
                    $pos += strcspn($buf, '"\\', $pos);
                    if ($pos >= $length) {
                        break;
                    }
                    if ($buf[$pos] === '\\') {
                        if ($pos + 1 >= $length) {
                            break; // the escaped character has not arrived
                        }
                        $pos += 2;
                        continue;
                    }
                    $pos++;
                    $inString = false;
                    if ($kind === 'string') {
                        $end = $pos;
                        break;
                    }
                    continue;
                }
                $pos += strcspn($buf, '"{}[]', $pos);
                if ($pos >= $length) {
                    break;
                }
                $c = $buf[$pos++];
                if ($c === '"') {
                    $inString = true;
                } elseif ($c === '{' || $c === '[') {
                    $depth++;
                } elseif (--$depth === 0) {
                    $end = $pos;
                    break;
                }
            }
        }
        if ($end === null) {
            if ($pos - $start > $this->maxPart) {
                throw new cloudpe_report_error("{$what} of the report is larger than " . self::bytes($this->maxPart) . ', more than this PHP may hold (memory_limit)', false);
            }
            $this->scan = array($kind, $pos, $depth, $inString);
            return null;
        }
        $this->scan = null;
        if ($end - $start > $this->maxPart) {
            throw new cloudpe_report_error("{$what} of the report is larger than " . self::bytes($this->maxPart) . ', more than this PHP may hold (memory_limit)', false);
        }
        return $end;
    }

    /** @throws cloudpe_report_error */
    private function decode($text, $what, $at)
    {
        $value = json_decode($text, true, 512, JSON_BIGINT_AS_STRING);
        if ($value === null && json_last_error() !== JSON_ERROR_NONE) {
            throw new cloudpe_report_error("{$what} is not valid JSON (at byte " . ($this->offset + $at) . '): ' . json_last_error_msg());
        }
        return $value;
    }

    /** @throws cloudpe_report_error */
    private function expect($c, $wanted, $pos, $problem)
    {
        if ($c !== $wanted) {
            throw new cloudpe_report_error("{$problem} (at byte " . ($this->offset + $pos) . ')');
        }
    }

    private function clip($text)
    {
        $text = is_scalar($text) ? (string) $text : gettype($text);
        return strlen($text) > 40 ? substr($text, 0, 40) . '...' : $text;
    }

    /** `$bytes` for a message: "12 MiB", "512 KiB", "100 bytes". */
    public static function bytes($bytes)
    {
        if ($bytes >= 1048576) {
            return round($bytes / 1048576, 1) . ' MiB';
        }
        if ($bytes >= 1024) {
            return round($bytes / 1024, 1) . ' KiB';
        }
        return $bytes . ' bytes';
    }
}
