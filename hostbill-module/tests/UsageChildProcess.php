<?php

/**
 * Runs the usage import (cloudpe_usage::hourly) in a PHP process of its own
 * (fixtures/usage-import-child.php) on the tests' MariaDB, so that a test can kill it at a
 * failpoint (CLOUDPE_USAGE_FAILPOINT) and look at what it left: the fake host's kill tests
 * (UsageKillTest) and the real host's (UsageEndToEndTest).
 */
trait UsageChildProcess
{
    /**
     * Runs the import once in a child PHP process, with HostBill's doubles as this test left them,
     * the clock at `$now` and the failpoint `$failpoint` (null: none). `$host`: `binary`,
     * `component`, `secrets`, `env`, and optionally `cache` and `trusted_keys`.
     *
     * @return array{exit: int, termsig: int, stdout: string, stderr: string}
     */
    protected function runImportChild(array $host, $now, $failpoint, $dir)
    {
        $server = HostBillTestServer::get();
        $state = array(
            'db' => array('dsn' => $server['dsn'], 'user' => $server['user'], 'password' => $server['password'], 'database' => $server['database']),
            'apps' => HbApps::$rows, 'groups' => HbApps::$groups, 'accounts' => ApiWrapper::$accounts, 'clients' => ApiWrapper::$clients,
            'metered_variables' => ApiWrapper::$meteredVariables, 'metered_period_start' => ApiWrapper::$meteredPeriodStart,
            'timezone' => 'UTC', 'now' => $now, 'host' => $host,
        );
        file_put_contents("{$dir}/state.json", json_encode($state));
        $env = array('PATH' => getenv('PATH') ?: '/usr/bin:/bin');
        if ($failpoint !== null) {
            $env[cloudpe_usage::FAILPOINT_VARIABLE] = $failpoint;
        }
        $process = proc_open(array(PHP_BINARY, __DIR__ . '/fixtures/usage-import-child.php', "{$dir}/state.json"), array(1 => array('pipe', 'w'), 2 => array('pipe', 'w')), $pipes, null, $env);
        $stdout = stream_get_contents($pipes[1]);
        $stderr = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        $status = proc_get_status($process);
        while ($status['running']) {
            usleep(10000);
            $status = proc_get_status($process);
        }
        $closed = proc_close($process);
        $exit = $status['signaled'] ? -1 : ($status['exitcode'] !== -1 ? $status['exitcode'] : $closed);
        $decoded = json_decode($stdout, true);
        return array('exit' => $exit, 'termsig' => $status['signaled'] ? $status['termsig'] : 0, 'stdout' => is_array($decoded) ? $decoded['output'] . "\n" . $decoded['log'] : $stdout, 'stderr' => $stderr);
    }
}
