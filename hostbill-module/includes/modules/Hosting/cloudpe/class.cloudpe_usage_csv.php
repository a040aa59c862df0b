<?php

require_once __DIR__ . '/class.cloudpe_apps.php';
require_once __DIR__ . '/class.cloudpe_text.php';

/**
 * The test mode's CSV: what the usage import would bill, one line per account and hour, appended
 * to `usage-test-app<App id>.csv` in a folder: the App setting "Usage test CSV folder" (an
 * absolute path), or the module's own `usage-test/` (made 0700 when missing).
 *
 * The filesystem is treated as hostile (other local users, a shared host): the folder must be a
 * real directory reached without a symbolic link (its realpath is itself), owned by the user PHP
 * runs as and not writable by group or others; the file, when it exists, a regular file (not a
 * link, one name), owned by that user. It is opened for appending and checked again once open
 * (the same inode as the name checked), so a link swapped in meanwhile is never written through.
 * Cells CloudPe controls that a spreadsheet would run as a formula (= + - @) are prefixed with '.
 */
final class cloudpe_usage_csv
{
    const HEADER = array('app_id', 'account_id', 'hour_utc', 'cost', 'bonus', 'billable', 'facts');

    /** @var resource */
    private $handle;
    /** @var string */
    private $path;
    /** @var string */
    private $app;

    private function __construct($handle, $path, $app)
    {
        $this->handle = $handle;
        $this->path = $path;
        $this->app = $app;
    }

    /** The default folder: the module's own `usage-test/`. */
    public static function defaultDir()
    {
        return cloudpe::bundleDir() . '/usage-test';
    }

    /**
     * Opens the App's CSV in `$dir` ('' the default folder) for appending.
     *
     * @throws cloudpe_apps_error naming what is unsafe or missing; nothing is written then
     */
    public static function open($dir, $serverId, $euid = null)
    {
        $dir = (string) $dir;
        $default = $dir === '';
        if ($default) {
            $dir = self::defaultDir();
        }
        $dir = rtrim($dir, '/');
        if ($dir === '' || $dir[0] !== '/' || strpos($dir, "\0") !== false || preg_match('#(^|/)\.\.?(/|$)#', $dir)) {
            throw new cloudpe_apps_error('the CSV folder "' . cloudpe_text::plain($dir) . '" is not an absolute path without . or .. (App setting "' . cloudpe_usage::SETTING_CSV . '")');
        }
        if ($default && !file_exists($dir) && !is_link($dir)) {
            @mkdir($dir, 0700);
        }
        $euid = $euid === null ? (function_exists('posix_geteuid') ? posix_geteuid() : null) : (int) $euid;
        $stat = @lstat($dir);
        if ($stat === false) {
            throw new cloudpe_apps_error("the CSV folder {$dir} does not exist: create it (owned by the user HostBill's cron runs as, mode 0700) or change the App setting \"" . cloudpe_usage::SETTING_CSV . '"');
        }
        if (($stat['mode'] & 0170000) !== 0040000 || realpath($dir) !== $dir) {
            throw new cloudpe_apps_error("the CSV folder {$dir} is a symbolic link or lies under one: give a real folder");
        }
        if ($euid !== null && (int) $stat['uid'] !== (int) $euid) {
            throw new cloudpe_apps_error("the CSV folder {$dir} belongs to uid {$stat['uid']}, not to uid {$euid}, the user this PHP runs as");
        }
        if ($stat['mode'] & 0022) {
            throw new cloudpe_apps_error("the CSV folder {$dir} is writable by group or others (mode " . sprintf('%04o', $stat['mode'] & 07777) . '): chmod 0700 it');
        }
        $path = $dir . '/usage-test-app' . (int) $serverId . '.csv';
        $before = @lstat($path);
        if ($before !== false) {
            if (($before['mode'] & 0170000) !== 0100000 || $before['nlink'] !== 1) {
                throw new cloudpe_apps_error("{$path} is not a plain file (a link, or a file with several names): move it away");
            }
            if ($euid !== null && (int) $before['uid'] !== (int) $euid) {
                throw new cloudpe_apps_error("{$path} belongs to uid {$before['uid']}, not to uid {$euid}, the user this PHP runs as");
            }
        }
        $old = umask(0077);
        $handle = @fopen($path, $before === false ? 'xb' : 'ab');
        umask($old);
        if ($handle === false) {
            throw new cloudpe_apps_error("{$path} could not be opened for appending");
        }
        $open = fstat($handle);
        $now = @lstat($path);
        if ($open === false || $now === false || ($now['mode'] & 0170000) !== 0100000 || $open['ino'] !== $now['ino'] || $open['dev'] !== $now['dev']
            || ($before !== false && ($before['ino'] !== $open['ino'] || $before['dev'] !== $open['dev'])) || $open['nlink'] !== 1) {
            fclose($handle);
            throw new cloudpe_apps_error("{$path} changed while it was opened (a link swapped in?): nothing written");
        }
        $csv = new self($handle, $path, (string) (int) $serverId);
        if ($open['size'] === 0) {
            $csv->line(self::HEADER);
        }
        return $csv;
    }

    /** The CSV's path. */
    public function path()
    {
        return $this->path;
    }

    /** One hour of one account. */
    public function write($accountId, $hour, $cost, $bonus, $billable, array $facts)
    {
        $this->line(array($this->app, (string) $accountId, $hour, $cost, $bonus, $billable, json_encode($facts, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE)));
    }

    public function close()
    {
        if (is_resource($this->handle)) {
            fclose($this->handle);
        }
    }

    /** @throws cloudpe_apps_error when the line could not be written whole */
    private function line(array $cells)
    {
        $cells = array_map(function ($cell) {
            $cell = cloudpe_text::plain((string) $cell);
            return ($cell !== '' && strpos('=+-@', $cell[0]) !== false && !preg_match('/^-?[0-9.]+$/', $cell)) ? "'" . $cell : $cell;
        }, $cells);
        if (fputcsv($this->handle, $cells, ',', '"', '') === false) {
            throw new cloudpe_apps_error("{$this->path}: a line could not be written (disk full?)");
        }
    }
}
