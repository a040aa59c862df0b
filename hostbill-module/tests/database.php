<?php

/**
 * HostBill's database for the tests: a real MariaDB holding HostBill's own definitions of the
 * tables the module touches (fixtures/hostbill-tables.sql, copied from a public copy of HostBill's
 * install.sql and upgrade files; see docs/hostbill.md, "The tests' database").
 *
 * The server is the one named by CLOUDPE_TEST_DB_DSN (with CLOUDPE_TEST_DB_USER and
 * CLOUDPE_TEST_DB_PASSWORD; `.ci/run` starts one and sets it), or else a private one that
 * fixtures/mariadb-server starts for this PHPUnit run and stops when it ends. Each run works in a
 * database of its own, dropped at the end.
 */
final class HostBillTestServer
{
    /** @var array{dsn: string, user: string, password: string}|null */
    private static $server;
    /** @var string|null the run's database */
    private static $database;

    /** @return array{dsn: string, user: string, password: string, database: string} */
    public static function get()
    {
        if (self::$server === null) {
            self::$server = self::find();
            $admin = self::connect(self::$server, null);
            self::$database = 'cloudpe_test_' . getmypid();
            $admin->exec('DROP DATABASE IF EXISTS `' . self::$database . '`');
            $admin->exec('CREATE DATABASE `' . self::$database . '` CHARACTER SET utf8');
            $server = self::$server;
            $database = self::$database;
            register_shutdown_function(function () use ($server, $database) {
                try {
                    self::connect($server, null)->exec("DROP DATABASE IF EXISTS `{$database}`");
                } catch (\Throwable $e) {
                    // The server is gone already (a private one is stopped by its watcher).
                }
            });
        }
        return self::$server + array('database' => self::$database);
    }

    /** A new connection to the run's database (`$database` null: to the server only). */
    public static function connect(array $server, $database, array $options = array())
    {
        $dsn = $server['dsn'] . ($database === null ? '' : ";dbname={$database}") . ';charset=utf8';
        return new PDO($dsn, $server['user'], $server['password'], $options + array(PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION));
    }

    /** @return array{dsn: string, user: string, password: string} */
    private static function find()
    {
        if (!extension_loaded('pdo_mysql')) {
            self::fail('PHP has no pdo_mysql extension (Debian: apt-get install php-mysql)');
        }
        $dsn = getenv('CLOUDPE_TEST_DB_DSN');
        if (is_string($dsn) && $dsn !== '') {
            $user = getenv('CLOUDPE_TEST_DB_USER');
            $password = getenv('CLOUDPE_TEST_DB_PASSWORD');
            $server = array('dsn' => $dsn, 'user' => is_string($user) && $user !== '' ? $user : 'root', 'password' => is_string($password) ? $password : '');
            try {
                self::connect($server, null);
            } catch (PDOException $e) {
                self::fail("cannot reach the MariaDB server CLOUDPE_TEST_DB_DSN names ({$dsn}): " . $e->getMessage());
            }
            return $server;
        }
        $script = __DIR__ . '/fixtures/mariadb-server';
        $process = proc_open(array($script, 'start', '', (string) getmypid()), array(1 => array('pipe', 'w'), 2 => array('pipe', 'w')), $pipes);
        if (!is_resource($process)) {
            self::fail("cannot run {$script}");
        }
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        if (proc_close($process) !== 0) {
            self::fail(trim($err) !== '' ? trim($err) : "{$script} failed");
        }
        return array('dsn' => trim($out), 'user' => 'root', 'password' => '');
    }

    private static function fail($why)
    {
        fwrite(STDERR, "The PHP tests need a MariaDB server: {$why}.\n");
        exit(1);
    }
}

/**
 * HBRegistry::db() in the tests: a real pdo_mysql connection to the run's database, with HostBill's
 * tables fresh for each test (HostBillDoubles::reset makes a new one), plus helpers for the tests.
 * `prepare`, `query` and `exec` are PDO's own; they only record the SQL in `$log`.
 *
 * Helpers: accountLog($id) (the account's hb_account_logs rows, `change` unserialized);
 * insertRow($table, $row) (a row as HostBill would hold it; the server refuses an incomplete
 * one); the read-only properties `tables` (table => rows, in primary key order) and `columns`
 * (table => column names), values as strings; `broken = true` ends the connection on the server's
 * side, as a database going away does, so every later statement fails.
 *
 * @property-read array<string, array[]> $tables
 * @property-read array<string, string[]> $columns
 * @property bool $broken
 */
class HostBillTestDb extends PDO
{
    /** The fixture's sections that make HostBill's current tables. */
    const UPGRADES = array('upgrade-profile-id', 'upgrade-account-log-ip');

    /** @var string[] every statement prepared, queried or executed */
    public $log = array();
    /** @var bool */
    private $isBroken = false;
    /** @var string|null the schema of the last test's tables */
    private static $schema;
    /** @var bool whether any statement ran since the tables were made */
    private static $touched = true;

    /**
     * @param bool $profileId HostBill's current tables (install.sql and the upgrades, with
     *        hb_cron_tasks.profile_id); false: as install.sql alone creates them
     * @param int $errorMode PDO::ATTR_ERRMODE of the handle (HostBill's may be either)
     */
    public function __construct($profileId = true, $errorMode = PDO::ERRMODE_EXCEPTION)
    {
        $server = HostBillTestServer::get();
        parent::__construct($server['dsn'] . ";dbname={$server['database']};charset=utf8", $server['user'], $server['password'], array(PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION));
        $schema = $profileId ? 'current' : 'install';
        if (self::$touched || self::$schema !== $schema) {
            $this->makeTables($schema);
        }
        self::$schema = $schema;
        self::$touched = false;
        $this->setAttribute(PDO::ATTR_ERRMODE, $errorMode);
    }

    #[\ReturnTypeWillChange]
    public function prepare($query, $options = array())
    {
        $this->log[] = $query;
        self::$touched = true;
        return parent::prepare($query, $options);
    }

    #[\ReturnTypeWillChange]
    public function query($query, $fetchMode = null, ...$fetchModeArgs)
    {
        $this->log[] = $query;
        self::$touched = true;
        return $fetchMode === null ? parent::query($query) : parent::query($query, $fetchMode, ...$fetchModeArgs);
    }

    #[\ReturnTypeWillChange]
    public function exec($statement)
    {
        $this->log[] = $statement;
        self::$touched = true;
        return parent::exec($statement);
    }

    /** Test helper: the rows of hb_account_logs for `$accountId`, oldest first, `change` unserialized. */
    public function accountLog($accountId)
    {
        $rows = $this->rows('SELECT * FROM `hb_account_logs` WHERE `account_id` = ? ORDER BY `id`', array((string) $accountId));
        foreach ($rows as $i => $row) {
            $rows[$i]['change'] = unserialize($row['change'], array('allowed_classes' => false));
        }
        return $rows;
    }

    /**
     * Test helper: inserts `$row` (column => value) into `$table` as HostBill would hold it.
     *
     * @throws PDOException when the table refuses it (an unknown column, a missing one...)
     */
    public function insertRow($table, array $row)
    {
        $columns = array_keys($row);
        self::$touched = true;
        $this->helper()->prepare("INSERT INTO `{$table}` (`" . implode('`, `', $columns) . '`) VALUES (' . implode(', ', array_fill(0, count($columns), '?')) . ')')
            ->execute(array_values($row));
    }

    public function __get($name)
    {
        if ($name === 'tables') {
            $tables = array();
            foreach ($this->tableNames() as $table) {
                $key = $this->primaryKey($table);
                $tables[$table] = $this->rows("SELECT * FROM `{$table}`" . ($key ? ' ORDER BY `' . implode('`, `', $key) . '`' : ''), array());
            }
            return $tables;
        }
        if ($name === 'columns') {
            $columns = array();
            foreach ($this->tableNames() as $table) {
                $columns[$table] = array_column($this->rows("SHOW COLUMNS FROM `{$table}`", array()), 'Field');
            }
            return $columns;
        }
        if ($name === 'broken') {
            return $this->isBroken;
        }
        throw new LogicException("HostBillTestDb has no property {$name}");
    }

    public function __set($name, $value)
    {
        if ($name === 'broken' && $value && !$this->isBroken) {
            $id = parent::query('SELECT CONNECTION_ID()')->fetchColumn();
            $this->helper()->exec('KILL CONNECTION ' . (int) $id);
            $this->isBroken = true;
            return;
        }
        throw new LogicException("HostBillTestDb->{$name} cannot be set" . ($name === 'tables' ? ': add rows with insertRow()' : ''));
    }

    public function __isset($name)
    {
        return in_array($name, array('tables', 'columns', 'broken'), true);
    }

    /**
     * Drops every table of the run's database and makes HostBill's: the fixture's `install`
     * section, then (schema `current`) each upgrade.
     */
    private function makeTables($schema)
    {
        $db = $this->helper();
        $db->exec('SET FOREIGN_KEY_CHECKS = 0');
        foreach ($this->tableNames() as $table) {
            $db->exec("DROP TABLE `{$table}`");
        }
        $sections = self::fixture();
        foreach (array_merge(array('install'), $schema === 'current' ? self::UPGRADES : array()) as $name) {
            foreach ($sections[$name] as $statement) {
                $db->exec($statement);
            }
        }
    }

    /** @return array<string, string[]> the fixture's statements by section */
    private static function fixture()
    {
        static $sections = null;
        if ($sections === null) {
            $sections = array();
            $current = null;
            $statement = '';
            foreach (file(__DIR__ . '/fixtures/hostbill-tables.sql', FILE_IGNORE_NEW_LINES) as $line) {
                if (preg_match('/^-- section: (\S+)$/', $line, $m)) {
                    $current = $m[1];
                    $sections[$current] = array();
                    continue;
                }
                if ($current === null || strpos($line, '--') === 0 || trim($line) === '') {
                    continue;
                }
                $statement .= $line . "\n";
                if (substr(rtrim($line), -1) === ';') {
                    $sections[$current][] = rtrim(trim($statement), ';');
                    $statement = '';
                }
            }
        }
        return $sections;
    }

    /** A second connection for the helpers: it works when the handle is broken, in any error mode. */
    private function helper()
    {
        static $helper = null;
        if ($helper === null) {
            $server = HostBillTestServer::get();
            $helper = HostBillTestServer::connect($server, $server['database']);
        }
        return $helper;
    }

    /** @return string[] */
    private function tableNames()
    {
        return $this->helper()->query('SHOW TABLES')->fetchAll(PDO::FETCH_COLUMN);
    }

    /** @return string[] the primary key's columns */
    private function primaryKey($table)
    {
        return array_column($this->rows("SHOW KEYS FROM `{$table}` WHERE `Key_name` = 'PRIMARY'", array()), 'Column_name');
    }

    /** Rows with every value a string (null stays null), as HostBill's API hands them. */
    private function rows($sql, array $params)
    {
        $statement = $this->helper()->prepare($sql);
        $statement->execute($params);
        $rows = array();
        foreach ($statement->fetchAll(PDO::FETCH_ASSOC) as $row) {
            $rows[] = array_map(function ($value) {
                return $value === null ? null : (string) $value;
            }, $row);
        }
        return $rows;
    }
}

/** The tests' old name of the database double, kept for tests written against it. */
class_alias('HostBillTestDb', 'FakeDb');
