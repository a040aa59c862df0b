<?php

require_once __DIR__ . '/class.cloudpe_report.php';
require_once __DIR__ . '/class.cloudpe_text.php';

/**
 * Raised when the module host could not be run or answered with something unusable. Its message is
 * safe to show to an admin: it never contains the session token.
 */
class cloudpe_host_error extends Exception
{
}

/**
 * Runs one operation of the sandboxed CloudPe module: starts `hostbill-module-host` (no shell:
 * the command is an argument array, the environment a minimal one), writes the JSON request to its
 * stdin, reads one JSON report from its stdout, and bounds everything: PHP's own timeout, the
 * deadline handed to the host (always shorter), and how much output is read.
 *
 * Exit codes of the host: 0 success, 1 the operation failed, 2 bad input, 3 the module was refused
 * or stopped. Anything else (a crash, a signal, output that is not the report) is a
 * cloudpe_host_error.
 *
 * Written for PHP 7.0 syntax so that an older PHP still reaches the version check and its message
 * instead of a parse error.
 */
class cloudpe_host
{
    const EXIT_SUCCESS = 0;
    const EXIT_OPERATION_FAILED = 1;
    const EXIT_BAD_INPUT = 2;
    const EXIT_MODULE_FAULT = 3;

    /** The array form of proc_open (no shell) needs PHP 7.4. */
    const MIN_PHP_VERSION_ID = 70400;
    const MIN_PHP_VERSION = '7.4';

    /** Most bytes read from the host's stdout (the report) and stderr (progress, diagnostics). */
    const MAX_STDOUT_BYTES = 67108864;
    const MAX_STDERR_BYTES = 1048576;

    /**
     * What PHP holds of a report is at most 1/HELD_FACTOR of the memory left under memory_limit:
     * decoded, a report of many small facts takes 8.2 times its JSON text (measured with PHP 8.2,
     * docs/hostbill.md "Memory"), and the text is held too. Never less than MIN_HELD_BYTES.
     */
    const HELD_FACTOR = 10;
    const MIN_HELD_BYTES = 1048576;

    /** Operations that read nothing on stdin: the runner closes it at once. */
    const NO_REQUEST = array('info', 'precompile', 'install', 'rollback');

    /** Options and variables the runner sets itself, or never: no caller may pass them. */
    const OWN_OPTIONS = array('--deadline-secs', '--cache-dir', '--component', '--trusted-keys', '--max-report-mib');
    const FORBIDDEN_OPTIONS = array('--allow-unsigned');
    const FORBIDDEN_VARIABLES = array('HOSTBILL_MODULE_ALLOW_UNSIGNED', 'HOSTBILL_MODULE_TRUSTED_KEYS', 'HOSTBILL_MODULE_COMPONENT');

    /** The environment the host gets; nothing of PHP's own environment is passed on. */
    const CHILD_PATH = '/usr/bin:/bin';
    const CHILD_LANG = 'C';

    /** @var string */
    private $binary;
    /** @var string */
    private $component;
    /** @var float seconds before PHP kills the host */
    private $timeout;
    /** @var string[] values that must never appear in a message */
    private $secrets;
    /** @var string|null */
    private $cacheDir;
    /** @var string public key(s) the component's signature must verify against (--trusted-keys) */
    private $trustedKeys;
    /** @var array<string, string> variables added to the minimal environment on purpose */
    private $env;
    /** @var int */
    private $maxStdout = self::MAX_STDOUT_BYTES;
    /** @var int */
    private $maxStderr = self::MAX_STDERR_BYTES;
    /** @var int|null most bytes of a report PHP holds at once; null: derived from memory_limit */
    private $maxHeld = null;
    /** @var callable|null fn(string $function): bool, null: the real check */
    private $isAvailable = null;
    /** @var int */
    private $phpVersionId = PHP_VERSION_ID;

    /**
     * @param string $binary path of hostbill-module-host
     * @param string $component path of the module's .wasm file
     * @param int|float $timeout seconds before PHP kills the host; the host's own deadline is shorter
     * @param string[] $secrets values scrubbed from every message (the session token)
     * @param string|null $cacheDir compiled-component cache folder, passed as --cache-dir
     * @param array<string, string> $env variables added to the child's minimal environment
     * @param string|null $trustedKeys PEM file or folder of the public keys trusted to sign the
     *        component, passed as --trusted-keys (null: the `keys` folder beside the component)
     */
    public function __construct($binary, $component, $timeout = 120, array $secrets = array(), $cacheDir = null, array $env = array(), $trustedKeys = null)
    {
        $this->binary = (string) $binary;
        $this->component = (string) $component;
        $this->timeout = max(1.0, (float) $timeout);
        $this->secrets = array_values(array_filter(array_map('strval', $secrets), 'strlen'));
        $this->cacheDir = ($cacheDir === null || $cacheDir === '') ? null : (string) $cacheDir;
        $this->trustedKeys = ($trustedKeys === null || $trustedKeys === '') ? dirname($this->component) . '/keys' : (string) $trustedKeys;
        $this->env = array();
        foreach ($env as $name => $value) {
            $this->env[(string) $name] = (string) $value;
        }
    }

    /** Caps how much of the host's stdout and stderr is read before it is killed (tests lower them). */
    public function limitOutput($stdoutBytes, $stderrBytes)
    {
        $this->maxStdout = max(1, (int) $stdoutBytes);
        $this->maxStderr = max(1, (int) $stderrBytes);
    }

    /**
     * Caps what PHP holds of a report at once (its members other than streamed decisions, and any
     * one decision) instead of deriving it from memory_limit (tests lower it).
     */
    public function limitHeld($bytes)
    {
        $this->maxHeld = max(1024, (int) $bytes);
    }

    /**
     * `memory_limit` (as php.ini writes it: `128M`, `1G`, `134217728`, `-1`) in bytes; null when
     * there is no limit.
     */
    public static function memoryLimitBytes($text)
    {
        $text = trim((string) $text);
        if (!preg_match('/^(\d+)\s*([kmg]?)$/i', $text, $m) || (int) $m[1] <= 0) {
            return null; // -1, or a form PHP itself would not apply as a limit
        }
        $shift = array('' => 0, 'k' => 10, 'm' => 20, 'g' => 30);
        return (int) $m[1] << $shift[strtolower($m[2])];
    }

    /**
     * Most bytes of a report PHP may hold at once under `$memoryLimit` with `$used` bytes already
     * in use (defaults: this PHP's memory_limit and usage): a tenth of what is left (see
     * HELD_FACTOR), at least MIN_HELD_BYTES, at most MAX_STDOUT_BYTES.
     */
    public static function heldBudget($memoryLimit = null, $used = null)
    {
        $limit = self::memoryLimitBytes($memoryLimit === null ? ini_get('memory_limit') : $memoryLimit);
        if ($limit === null) {
            return self::MAX_STDOUT_BYTES;
        }
        $used = $used === null ? memory_get_usage() : (int) $used;
        return (int) min(self::MAX_STDOUT_BYTES, max(self::MIN_HELD_BYTES, intdiv(max(0, $limit - $used), self::HELD_FACTOR)));
    }

    /** What this host lets PHP hold of a report at once (limitHeld, or derived from memory_limit). */
    public function held()
    {
        return min($this->maxStdout, $this->maxHeld !== null ? $this->maxHeld : self::heldBudget());
    }

    /**
     * Replaces the check of which PHP functions may be called (tests simulate `disable_functions`
     * and old PHP versions with it).
     *
     * @param callable|null $isAvailable fn(string $function): bool
     * @param int|null $phpVersionId e.g. 70300
     */
    public function checkEnvironmentWith($isAvailable, $phpVersionId = null)
    {
        $this->isAvailable = $isAvailable;
        if ($phpVersionId !== null) {
            $this->phpVersionId = (int) $phpVersionId;
        }
    }

    /** The host binary's path. */
    public function binary()
    {
        return $this->binary;
    }

    /** The active component's path. */
    public function component()
    {
        return $this->component;
    }

    /** What --trusted-keys names: the public key file or folder. */
    public function trustedKeys()
    {
        return $this->trustedKeys;
    }

    /** PHP's timeout for this host, in seconds. */
    public function timeout()
    {
        return $this->timeout;
    }

    /** The deadline passed to the host (`--deadline-secs`): strictly shorter than PHP's timeout. */
    public function deadline()
    {
        return self::deadlineFor($this->timeout);
    }

    /**
     * The host's deadline for a PHP timeout of `$timeout` seconds: 10% shorter, at least 10 s
     * shorter when that leaves half of it, so the host reports its own timeout (exit 3, a clear
     * kind) before PHP has to kill it.
     */
    public static function deadlineFor($timeout)
    {
        $timeout = max(1.0, (float) $timeout);
        $margin = max($timeout * 0.1, min(10.0, $timeout * 0.5));
        return round($timeout - $margin, 3);
    }

    /** The functions the runner calls that shared hosting commonly lists in disable_functions. */
    public static function requiredFunctions()
    {
        return array('proc_open', 'proc_get_status', 'proc_terminate', 'proc_close', 'stream_select', 'stream_set_blocking');
    }

    /** Whether PHP lets the module call `$function` (it exists and is not in disable_functions). */
    public static function functionAvailable($function)
    {
        if (!function_exists($function)) {
            return false;
        }
        $disabled = array_map('trim', explode(',', strtolower((string) ini_get('disable_functions'))));
        return !in_array(strtolower($function), $disabled, true);
    }

    /**
     * Why this PHP cannot run the host, as an admin-readable sentence, or null when it can.
     *
     * @param callable|null $isAvailable fn(string $function): bool (null: functionAvailable)
     * @param int $phpVersionId
     * @return string|null
     */
    public static function environmentProblem($isAvailable = null, $phpVersionId = PHP_VERSION_ID)
    {
        if ((int) $phpVersionId < self::MIN_PHP_VERSION_ID) {
            $found = intdiv((int) $phpVersionId, 10000) . '.' . intdiv((int) $phpVersionId % 10000, 100);
            return 'the CloudPe module needs PHP ' . self::MIN_PHP_VERSION . ' or newer (it runs the module host with the array form of proc_open); this PHP is ' . $found . ': upgrade the PHP that runs HostBill (web server and cron)';
        }
        $check = $isAvailable ?: array(__CLASS__, 'functionAvailable');
        $missing = array();
        foreach (self::requiredFunctions() as $function) {
            if (!call_user_func($check, $function)) {
                $missing[] = $function;
            }
        }
        if (!$missing) {
            return null;
        }
        return 'PHP cannot run the module host: ' . implode(', ', $missing) . (count($missing) === 1 ? ' is' : ' are')
            . ' disabled (php.ini disable_functions). Remove ' . implode(', ', self::requiredFunctions())
            . ' from disable_functions in the php.ini of the PHP that runs HostBill (the web server\'s and the cron\'s, which are often different files), then retry';
    }

    /**
     * Runs `$operation` with `$request` on stdin.
     *
     * @param string $operation e.g. "suspend"
     * @param array $request encoded as the JSON request
     * @param string[] $options extra command-line options, e.g. ["--dry-run"]
     * @return array{exit: int, report: array, stderr: string}
     * @throws cloudpe_host_error
     */
    public function run($operation, array $request, array $options = array())
    {
        $input = in_array((string) $operation, self::NO_REQUEST, true) ? '' : json_encode($request);
        if ($input === false) {
            throw new cloudpe_host_error('the request cannot be encoded as JSON: ' . json_last_error_msg());
        }
        return $this->execute((string) $operation, $input, $options, null);
    }

    /**
     * Runs `$operation` with the JSON request `$input` (already encoded: a large sync's accounts
     * are written as they are read) and hands each element of the report's `decisions` to
     * `$onDecision` as soon as it arrives, so the decisions never all exist in PHP. The report
     * returned has an empty `decisions`. If `$onDecision` throws, the host is stopped and the run
     * is a cloudpe_host_error with its message.
     *
     * @param string $operation
     * @param string $input the JSON request
     * @param string[] $options
     * @param callable $onDecision fn(array $decision, int $index): void
     * @param string $member the list member streamed: `decisions` (sync) or `usage` (usage)
     * @return array{exit: int, report: array, stderr: string, advice: string|null}
     * @throws cloudpe_host_error
     */
    public function stream($operation, $input, array $options, $onDecision, $member = 'decisions')
    {
        return $this->execute((string) $operation, (string) $input, $options, $onDecision, (string) $member);
    }

    /**
     * run() and stream(): `$onDecision` null keeps the decisions in the report. A run the host
     * refused because an install replaced the component while it was read is run once more.
     */
    private function execute($operation, $input, array $options, $onDecision, $member = 'decisions')
    {
        $result = $this->executeOnce($operation, $input, $options, $onDecision, $member);
        if (self::replacedWhileRead($result['report'])) {
            // The host refused the pair before running anything (no decision was handed out), so
            // running once more is safe.
            usleep(self::REPLACED_RETRY_PAUSE_US);
            $result = $this->executeOnce($operation, $input, $options, $onDecision, $member);
        }
        return $result;
    }

    /** Pause before the one retry of a run that read a component while it was being replaced. */
    const REPLACED_RETRY_PAUSE_US = 200000;

    /**
     * Whether `$report` is the refusal of a component whose signature does not match its bytes:
     * what a run overlapping an install can read (the host reads the pair under the folder's lock
     * and reads it again if it changed, but a folder it cannot lock leaves a window). Nothing ran,
     * so the caller retries once; a second refusal is reported as it is.
     */
    public static function replacedWhileRead(array $report)
    {
        $error = isset($report['error']) && is_array($report['error']) ? $report['error'] : array();
        return isset($error['kind'], $error['message']) && $error['kind'] === 'module-refused'
            && is_string($error['message']) && strpos($error['message'], 'it was modified after it was signed') !== false;
    }

    /** One run of the host: see execute(). */
    private function executeOnce($operation, $input, array $options, $onDecision, $member = 'decisions')
    {
        $problem = self::environmentProblem($this->isAvailable, $this->phpVersionId);
        if ($problem !== null) {
            throw new cloudpe_host_error($problem);
        }
        if (!is_file($this->binary)) {
            throw new cloudpe_host_error("the module host {$this->binary} does not exist: reinstall the module bundle (bin/hostbill-module-host)");
        }
        if (!is_executable($this->binary)) {
            throw new cloudpe_host_error("the module host {$this->binary} is not executable by this PHP's user: chmod +x it");
        }
        if (!is_file($this->component) || !is_readable($this->component)) {
            throw new cloudpe_host_error("the module component {$this->component} does not exist or is not readable: reinstall the module bundle (cloudpe.wasm)");
        }
        $problem = $this->keysProblem();
        if ($problem !== null) {
            throw new cloudpe_host_error($problem);
        }
        foreach ($options as $option) {
            if (in_array($option, self::OWN_OPTIONS, true)) {
                throw new cloudpe_host_error("the option {$option} is set by the module itself and cannot be passed again");
            }
            if (in_array($option, self::FORBIDDEN_OPTIONS, true)) {
                throw new cloudpe_host_error("the option {$option} is never used by the module: it runs only components signed by a trusted key");
            }
        }
        if (in_array($operation, self::NO_REQUEST, true)) {
            $input = '';
        }
        $held = $this->held();
        // A streamed report is held one decision at a time: only the total read bounds it. Any
        // other report is held whole, within what memory_limit leaves.
        $reportCap = $onDecision !== null ? $this->maxStdout : $held;
        $command = array(
            $this->binary, $operation, '--component', $this->component, '--trusted-keys', $this->trustedKeys,
            '--deadline-secs', self::number($this->deadline()),
            // The host stops at a report this runner would not read whole, and says why; a large
            // sync's report is written while it runs, so this is the only bound on it.
            '--max-report-mib', (string) max(1, intdiv($reportCap, 1048576) - 1),
        );
        if ($this->cacheDir !== null) {
            $command[] = '--cache-dir';
            $command[] = $this->cacheDir;
        }
        $command = array_merge($command, array_map('strval', $options));

        $pipes = array();
        $process = proc_open($command, array(0 => array('pipe', 'r'), 1 => array('pipe', 'w'), 2 => array('pipe', 'w')), $pipes, null, $this->childEnvironment());
        if (!is_resource($process)) {
            throw new cloudpe_host_error("the module host {$this->binary} could not be started");
        }
        $reader = new cloudpe_report_reader($held, $onDecision, $member);
        $result = $this->exchange($process, $pipes, $input, $reader);
        $stdout = $result['stdout'];
        $stderr = $result['stderr'];
        if ($result['overflow'] !== null) {
            list($stream, $limit) = $result['overflow'];
            throw new cloudpe_host_error("the module host wrote more than " . self::bytes($limit) . " to its {$stream} during {$operation} and was stopped (a report is never that large: the module or host is faulty)" . $this->hint($stderr));
        }
        $refused = $result['refused'];
        if ($refused !== null && !($refused instanceof cloudpe_report_error && $refused->notReport)) {
            // Too large to hold, or refused by the caller: the host was stopped at once.
            throw new cloudpe_host_error("the module host's report was refused during {$operation} and the host stopped: " . $this->scrub($refused->getMessage()));
        }
        if ($result['timed_out']) {
            throw new cloudpe_host_error("the module host did not finish {$operation} within " . self::number($this->timeout) . " s and was stopped" . $this->hint($stderr));
        }
        if ($result['signaled']) {
            throw new cloudpe_host_error("the module host crashed during {$operation} (signal {$result['termsig']})" . $this->hint($stderr));
        }
        $exit = $result['exitcode'];
        if (!in_array($exit, array(0, 1, 2, 3), true)) {
            throw new cloudpe_host_error("the module host failed during {$operation} with exit code {$exit}" . $this->hint($stderr));
        }
        $report = null;
        try {
            if ($refused !== null) {
                throw $refused;
            }
            $report = $reader->finish();
        } catch (cloudpe_report_error $e) {
            throw new cloudpe_host_error("the module host printed something that is not its report during {$operation} (" . $this->scrub($e->getMessage()) . ')' . $this->hint($stdout . ' ' . $stderr));
        }
        if (!is_array($report) || !array_key_exists('ok', $report) || !isset($report['operation'])) {
            throw new cloudpe_host_error("the module host printed something that is not its report during {$operation}" . $this->hint($stdout . ' ' . $stderr));
        }
        return array('exit' => $exit, 'report' => $report, 'stderr' => $this->scrub($stderr), 'advice' => $this->advice($report));
    }

    /**
     * Why the trusted keys cannot be used, as an admin-readable sentence, or null. Checked before
     * the host starts so that a missing key is named as such, not as a refused component.
     */
    public function keysProblem()
    {
        $path = $this->trustedKeys;
        $fix = 'reinstall the module bundle (includes/modules/Hosting/cloudpe/keys/vendor.pub, the vendor\'s public key): the module runs only components signed by a trusted key';
        if (is_dir($path)) {
            $keys = array_filter(glob(rtrim($path, '/') . '/*') ?: array(), function ($file) {
                return is_file($file) && preg_match('/\.(pem|pub)$/', $file);
            });
            if (!$keys) {
                return "the module's trusted keys folder {$path} holds no public key (*.pem, *.pub): {$fix}";
            }
            return null;
        }
        if (!is_file($path)) {
            return "the module's trusted keys {$path} do not exist: {$fix}";
        }
        if (!is_readable($path)) {
            return "the module's trusted keys {$path} are not readable by this PHP's user: chmod a+r it";
        }
        return null;
    }

    /**
     * What the admin should do about a report, when it is a refusal of the component's signature
     * or of the trusted keys; null for any other report.
     *
     * @return string|null
     */
    public function advice(array $report)
    {
        $kind = isset($report['error']['kind']) ? (string) $report['error']['kind'] : '';
        $message = isset($report['error']['message']) ? (string) $report['error']['message'] : '';
        if ($kind === 'bad-input' && strpos($message, '--trusted-keys') === 0) {
            return 'The trusted public key cannot be read: reinstall keys/vendor.pub from the vendor\'s module bundle.';
        }
        if ($kind !== 'module-refused' || !preg_match('/is refused: (it is not signed|it is signed by key|it was modified after it was signed|no trusted keys|its signature file|cannot read its signature)/', $message)) {
            return null;
        }
        $advice = 'Install the vendor\'s signed cloudpe.wasm together with its cloudpe.wasm.sig (both from the same release bundle) in ' . dirname($this->component) . '/';
        if (is_file(self::previousOf($this->component))) {
            $advice .= ', or switch back to the previous component, as the web server\'s user: ' . $this->command('rollback');
        }
        return $advice . ' (README: Upgrading the module).';
    }

    /** Where the host keeps the component an install replaced. */
    public static function previousOf($component)
    {
        return $component . '.previous';
    }

    /**
     * The shell command an admin runs for `$operation` (`rollback`, `info`, `install NEW`) on this
     * host, component and keys; paths quoted only where a shell needs it.
     */
    public function command($operation, array $arguments = array())
    {
        $words = array_merge(array($this->binary, '--component', $this->component, '--trusted-keys', $this->trustedKeys, $operation), $arguments);
        return implode(' ', array_map(function ($word) {
            return preg_match('#^[A-Za-z0-9_./:=@%+-]+$#', (string) $word) ? (string) $word : escapeshellarg((string) $word);
        }, $words));
    }

    /**
     * The report's `error.limit` as a phrase ("stopped by the deadline limit (108 s)"), or null.
     */
    public static function limitNote(array $report)
    {
        if (!isset($report['error']['limit']['name']) || !is_scalar($report['error']['limit']['name'])) {
            return null;
        }
        $limit = $report['error']['limit'];
        $value = isset($limit['value']) && is_scalar($limit['value']) && (string) $limit['value'] !== '' ? ' (' . $limit['value'] . ')' : '';
        return 'stopped by the ' . $limit['name'] . ' limit' . $value;
    }

    /**
     * The report's `warnings` (e.g. the token crossed the network over plain http): strings only,
     * at most 5, each cut to 500 characters.
     *
     * @return string[]
     */
    public static function warnings(array $report)
    {
        $warnings = array();
        foreach (isset($report['warnings']) && is_array($report['warnings']) ? $report['warnings'] : array() as $warning) {
            if (is_string($warning) && $warning !== '' && count($warnings) < 5) {
                $warnings[] = strlen($warning) > 500 ? substr($warning, 0, 500) . '...' : $warning;
            }
        }
        return $warnings;
    }

    /** The report's `meter` as a phrase ("3 requests in 0.4 s"), or null. */
    public static function meterNote(array $report)
    {
        if (!isset($report['meter']) || !is_array($report['meter'])) {
            return null;
        }
        $meter = $report['meter'];
        $requests = isset($meter['requests']) ? (int) $meter['requests'] : 0;
        $seconds = isset($meter['wall_ms']) ? ((int) $meter['wall_ms']) / 1000 : 0.0;
        return sprintf('%d request%s in %.1f s', $requests, $requests === 1 ? '' : 's', $seconds);
    }

    /** Replaces every secret in `$text`. */
    public function scrub($text)
    {
        return self::scrubText($text, $this->secrets);
    }

    /**
     * `$text` with every secret replaced by [REDACTED]: its plain form, its URL-encoded forms and
     * its JSON-escaped forms (a token with `/`, `"` or `\` appears as `\/`, `\"`, `\\` in JSON).
     * The result is also plain text (cloudpe_text::plain: no control characters or ANSI escapes).
     *
     * @param string $text
     * @param string[] $secrets
     * @return string
     */
    public static function scrubText($text, array $secrets)
    {
        // Control characters and ANSI escapes go first: a secret split by one is found whole.
        $text = cloudpe_text::plain((string) $text);
        $forms = array();
        foreach ($secrets as $secret) {
            $secret = (string) $secret;
            if ($secret === '') {
                continue;
            }
            $forms[] = $secret;
            $forms[] = htmlspecialchars($secret, ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML401, 'UTF-8');
            $forms[] = urlencode($secret);
            $forms[] = rawurlencode($secret);
            foreach (array(0, JSON_UNESCAPED_SLASHES, JSON_UNESCAPED_UNICODE, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) as $flags) {
                $json = json_encode($secret, $flags);
                if (is_string($json) && strlen($json) > 2) {
                    $escaped = substr($json, 1, -1);
                    $forms[] = $escaped;
                    $forms[] = rawurlencode($escaped);
                }
            }
        }
        $forms = array_values(array_unique(array_filter($forms, 'strlen')));
        // Longest first, so that a form containing another is replaced whole.
        usort($forms, function ($a, $b) {
            return strlen($b) - strlen($a);
        });
        return $forms ? str_replace($forms, '[REDACTED]', (string) $text) : (string) $text;
    }

    /** The child's environment: a fixed PATH and LANG, plus what the caller passed on purpose. */
    private function childEnvironment()
    {
        $env = array('PATH' => self::CHILD_PATH, 'LANG' => self::CHILD_LANG);
        foreach ($this->env as $name => $value) {
            if ($name === '' || strpbrk($name, "=\0") !== false || strpos($value, "\0") !== false) {
                throw new cloudpe_host_error("the environment variable name or value for {$name} is not valid");
            }
            if (in_array(strtoupper($name), self::FORBIDDEN_VARIABLES, true)) {
                throw new cloudpe_host_error("the environment variable {$name} is set by the module itself or never");
            }
            $env[$name] = $value;
        }
        return $env;
    }

    /**
     * Writes the request and reads both outputs without blocking on either. Completion is the
     * process's exit (proc_get_status), not EOF: a child that exits while something else still
     * holds its pipes open is done once what it wrote has been read. Stops the host at the timeout
     * or when an output passes its cap.
     *
     * Stdout goes to `$reader` as it arrives; only its first 4 KiB are kept (for messages). A
     * reader that refuses the output as too large, or whose decision callback throws, stops the
     * host at once; output that is not a report is still read to the end (within the caps), so
     * the message can quote it.
     *
     * @return array{stdout: string, stderr: string, timed_out: bool, overflow: array|null, refused: Throwable|null, signaled: bool, termsig: int, exitcode: int}
     */
    private function exchange($process, array $pipes, $input, cloudpe_report_reader $reader)
    {
        foreach ($pipes as $pipe) {
            stream_set_blocking($pipe, false);
        }
        $deadline = microtime(true) + $this->timeout;
        $out = array(1 => '', 2 => '');
        $sizes = array(1 => 0, 2 => 0);
        $refused = null;
        $caps = array(1 => $this->maxStdout, 2 => $this->maxStderr);
        $names = array(1 => 'standard output', 2 => 'standard error');
        $open = array(1 => $pipes[1], 2 => $pipes[2]);
        $stdin = $pipes[0];
        $written = 0;
        $exited = null;
        $overflow = null;
        $timedOut = false;
        while (true) {
            if ($exited === null) {
                $status = proc_get_status($process);
                if (!$status['running']) {
                    $exited = $status; // exitcode is only reported by the first call that sees the exit
                    if ($stdin !== null) {
                        @fclose($stdin);
                        $stdin = null;
                    }
                }
            }
            if ($exited !== null && !$open) {
                break;
            }
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                $timedOut = true;
                break;
            }
            $read = array_values($open);
            $write = $stdin !== null ? array($stdin) : array();
            $except = array();
            // While the host runs, wake up at least every 50 ms to notice its exit; once it has
            // exited, whatever it wrote is already in the pipes, so a quiet pipe means done.
            $wait = min($left, 0.05);
            $ready = 0;
            if ($read || $write) {
                $ready = @stream_select($read, $write, $except, 0, (int) ($wait * 1000000));
                if ($ready === false) {
                    $ready = 0;
                    usleep(1000);
                }
            } else {
                usleep((int) ($wait * 1000000));
            }
            if ($exited !== null && $ready === 0) {
                break;
            }
            if ($write) {
                $chunk = @fwrite($stdin, (string) substr($input, $written, 65536));
                if ($chunk === false) {
                    @fclose($stdin);
                    $stdin = null;
                } else {
                    $written += $chunk;
                    if ($written >= strlen($input)) {
                        fclose($stdin);
                        $stdin = null;
                    }
                }
            }
            foreach ($read as $pipe) {
                $index = ($pipe === $pipes[1]) ? 1 : 2;
                $data = fread($pipe, 65536);
                if ($data === '' || $data === false) {
                    if (feof($pipe)) {
                        fclose($pipe);
                        unset($open[$index]);
                    }
                    continue;
                }
                $sizes[$index] += strlen($data);
                if ($sizes[$index] > $caps[$index]) {
                    $overflow = array($names[$index], $caps[$index]);
                    break 2;
                }
                if ($index === 2) {
                    $out[2] .= $data;
                    continue;
                }
                if (strlen($out[1]) < 4096) {
                    $out[1] .= substr($data, 0, 4096 - strlen($out[1]));
                }
                if ($refused === null) {
                    try {
                        $reader->feed($data);
                    } catch (\Throwable $e) {
                        $refused = $e;
                        if (!($e instanceof cloudpe_report_error && $e->notReport)) {
                            break 2;
                        }
                    }
                }
            }
        }
        $result = array('stdout' => $out[1], 'stderr' => $out[2], 'timed_out' => $timedOut, 'overflow' => $overflow, 'refused' => $refused, 'signaled' => false, 'termsig' => 0, 'exitcode' => -1);
        if ($exited === null) {
            // Timed out or flooding: stop it. SIGKILL, as a host past its own deadline is stuck.
            proc_terminate($process, 9);
        }
        if ($stdin !== null) {
            @fclose($stdin);
        }
        foreach ($open as $pipe) {
            @fclose($pipe);
        }
        $closed = proc_close($process);
        if ($exited !== null) {
            $result['signaled'] = (bool) $exited['signaled'];
            $result['termsig'] = (int) $exited['termsig'];
            $result['exitcode'] = (int) $exited['exitcode'];
            if ($result['exitcode'] === -1 && !$result['signaled'] && $closed !== -1) {
                $result['exitcode'] = (int) $closed;
            }
        }
        return $result;
    }

    /** A short, scrubbed excerpt of what the process printed, for an error message. */
    private function hint($output)
    {
        $output = (string) $output;
        if (strlen($output) > 4096) {
            $output = substr($output, 0, 4096);
        }
        $output = trim((string) preg_replace('/\s+/', ' ', $this->scrub($output)));
        if ($output === '') {
            return '';
        }
        return ': ' . (strlen($output) > 200 ? substr($output, 0, 200) . '...' : $output);
    }

    /** `$seconds` as the host's flags take it: no exponent, no trailing zeros. */
    private static function number($seconds)
    {
        $text = rtrim(rtrim(sprintf('%.3F', (float) $seconds), '0'), '.');
        return $text === '' ? '0' : $text;
    }

    /** `$bytes` for a message: "64 MiB", "1 MiB", "512 KiB", "100 bytes". */
    private static function bytes($bytes)
    {
        if ($bytes % 1048576 === 0) {
            return ($bytes / 1048576) . ' MiB';
        }
        if ($bytes % 1024 === 0) {
            return ($bytes / 1024) . ' KiB';
        }
        return $bytes . ' bytes';
    }
}
