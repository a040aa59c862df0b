<?php

/**
 * Raised when the module host could not be run or answered with something unusable. Its message is
 * safe to show to an admin: it never contains the session token.
 */
class cloudpe_host_error extends Exception
{
}

/**
 * Runs one operation of the sandboxed CloudPe module: starts `hostbill-module-host` (no shell:
 * the command is an argument array), writes the JSON request to its stdin, reads one JSON report
 * from its stdout, and enforces a timeout.
 *
 * Exit codes of the host: 0 success, 1 the operation failed, 2 bad input, 3 the module was refused
 * or stopped. Anything else (a crash, a signal, output that is not the report) is a
 * cloudpe_host_error.
 */
class cloudpe_host
{
    const EXIT_SUCCESS = 0;
    const EXIT_OPERATION_FAILED = 1;
    const EXIT_BAD_INPUT = 2;
    const EXIT_MODULE_FAULT = 3;

    /** @var string */
    private $binary;
    /** @var string */
    private $component;
    /** @var int seconds */
    private $timeout;
    /** @var string[] values that must never appear in a message */
    private $secrets;
    /** @var string|null */
    private $cacheDir;

    /**
     * @param string $binary path of hostbill-module-host
     * @param string $component path of the module's .wasm file
     * @param int $timeout seconds before the host process is killed
     * @param string[] $secrets values scrubbed from every message (the session token)
     * @param string|null $cacheDir compiled-component cache folder (null: the host's default)
     */
    public function __construct($binary, $component, $timeout = 120, array $secrets = array(), $cacheDir = null)
    {
        $this->binary = (string) $binary;
        $this->component = (string) $component;
        $this->timeout = max(1, (int) $timeout);
        $this->secrets = array_values(array_filter(array_map('strval', $secrets), 'strlen'));
        $this->cacheDir = $cacheDir;
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
        if (!is_file($this->binary)) {
            throw new cloudpe_host_error("the module host {$this->binary} does not exist: reinstall the module bundle");
        }
        if (!is_executable($this->binary)) {
            throw new cloudpe_host_error("the module host {$this->binary} is not executable: chmod +x it");
        }
        if (!is_file($this->component) || !is_readable($this->component)) {
            throw new cloudpe_host_error("the module component {$this->component} does not exist or is not readable: check the App's Component file field");
        }
        $input = json_encode($request);
        if ($input === false) {
            throw new cloudpe_host_error('the request cannot be encoded as JSON: ' . json_last_error_msg());
        }
        $command = array_merge(array($this->binary, $operation, '--component', $this->component), $options);
        $env = null;
        if ($this->cacheDir !== null) {
            $env = array_merge(getenv(), array('HOSTBILL_MODULE_CACHE_DIR' => $this->cacheDir));
        }
        $pipes = array();
        $process = proc_open($command, array(0 => array('pipe', 'r'), 1 => array('pipe', 'w'), 2 => array('pipe', 'w')), $pipes, null, $env);
        if (!is_resource($process)) {
            throw new cloudpe_host_error("the module host {$this->binary} could not be started");
        }
        list($stdout, $stderr, $status) = $this->exchange($process, $pipes, $input);
        if ($status['timed_out']) {
            throw new cloudpe_host_error("the module host did not finish {$operation} within {$this->timeout} s and was stopped");
        }
        if ($status['signaled']) {
            throw new cloudpe_host_error("the module host crashed during {$operation} (signal {$status['termsig']})" . $this->hint($stderr));
        }
        $exit = $status['exitcode'];
        if (!in_array($exit, array(0, 1, 2, 3), true)) {
            throw new cloudpe_host_error("the module host failed during {$operation} with exit code {$exit}" . $this->hint($stderr));
        }
        $report = json_decode($stdout, true);
        if (!is_array($report) || !array_key_exists('ok', $report) || !isset($report['operation'])) {
            throw new cloudpe_host_error("the module host printed something that is not its report during {$operation}" . $this->hint($stdout . $stderr));
        }
        return array('exit' => $exit, 'report' => $report, 'stderr' => $this->scrub($stderr));
    }

    /** Replaces every secret in `$text`. */
    public function scrub($text)
    {
        foreach ($this->secrets as $secret) {
            $text = str_replace(array($secret, urlencode($secret), rawurlencode($secret)), '[REDACTED]', $text);
        }
        return $text;
    }

    /**
     * Writes the request and reads both outputs without blocking on either, until the process
     * exits or the timeout passes.
     */
    private function exchange($process, array $pipes, $input)
    {
        foreach ($pipes as $pipe) {
            stream_set_blocking($pipe, false);
        }
        $deadline = microtime(true) + $this->timeout;
        $stdout = '';
        $stderr = '';
        $written = 0;
        $open = array(1 => $pipes[1], 2 => $pipes[2]);
        $stdin = $pipes[0];
        while (true) {
            $read = array_values($open);
            $write = ($stdin !== null) ? array($stdin) : array();
            $except = array();
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                proc_terminate($process, 9);
                $this->closeAll($pipes, $stdin, $open);
                proc_close($process);
                return array($stdout, $stderr, array('timed_out' => true, 'signaled' => false, 'termsig' => 0, 'exitcode' => -1));
            }
            if ($read || $write) {
                $seconds = (int) floor(min($left, 1.0));
                $micro = (int) ((min($left, 1.0) - $seconds) * 1000000);
                @stream_select($read, $write, $except, $seconds, $micro);
            }
            if ($write) {
                $chunk = @fwrite($stdin, substr($input, $written, 65536));
                if ($chunk === false) {
                    fclose($stdin);
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
                $data = fread($pipe, 65536);
                $index = ($pipe === $pipes[1]) ? 1 : 2;
                if ($data === '' || $data === false) {
                    if (feof($pipe)) {
                        fclose($pipe);
                        unset($open[$index]);
                    }
                    continue;
                }
                if ($index === 1) {
                    $stdout .= $data;
                } else {
                    $stderr .= $data;
                }
            }
            if (!$open) {
                break;
            }
        }
        if ($stdin !== null) {
            fclose($stdin);
        }
        // Both outputs are closed: the process is exiting; wait for its status.
        do {
            $status = proc_get_status($process);
            if ($status['running']) {
                if (microtime(true) > $deadline) {
                    proc_terminate($process, 9);
                    proc_close($process);
                    return array($stdout, $stderr, array('timed_out' => true, 'signaled' => false, 'termsig' => 0, 'exitcode' => -1));
                }
                usleep(1000);
            }
        } while ($status['running']);
        proc_close($process);
        return array($stdout, $stderr, array(
            'timed_out' => false,
            'signaled' => (bool) $status['signaled'],
            'termsig' => (int) $status['termsig'],
            'exitcode' => (int) $status['exitcode'],
        ));
    }

    private function closeAll(array $pipes, $stdin, array $open)
    {
        if ($stdin !== null) {
            @fclose($stdin);
        }
        foreach ($open as $pipe) {
            @fclose($pipe);
        }
    }

    /** A short, scrubbed excerpt of what the process printed, for an error message. */
    private function hint($output)
    {
        $output = trim(preg_replace('/\s+/', ' ', $this->scrub((string) $output)));
        if ($output === '') {
            return '';
        }
        return ': ' . (strlen($output) > 200 ? substr($output, 0, 200) . '...' : $output);
    }
}
