<?php

require_once __DIR__ . '/class.cloudpe_text.php';

/**
 * HostBill's database, as the module's own tables and HostBill's cron and log tables are reached:
 * the PDO handle `HBRegistry::db()` (public modules use it for their own SQL), prepared
 * statements only, and answers that work whatever PDO's error mode is (tests/DatabaseTest.php runs
 * them in both). Every string bound is cut to what HostBill's `CHARSET=utf8` tables hold
 * (cloudpe_text::column: no character beyond U+FFFF). One place for the
 * handle, SELECT, other statements and INSERT, shared by cloudpe_apps, cloudpe_retries and
 * cloudpe_audit.
 */
final class cloudpe_db
{
    /** @var object|null PDO, taken from HBRegistry on first use unless given */
    private $handle;

    private function __construct($handle)
    {
        $this->handle = $handle;
    }

    /** `$db` as a cloudpe_db: itself if it is one, else a wrapper of the PDO handle (null: HostBill's). */
    public static function of($db = null)
    {
        return $db instanceof self ? $db : new self($db);
    }

    /**
     * Runs a prepared statement; returns it.
     *
     * @throws cloudpe_apps_error when there is no handle or the database refuses
     */
    public function execute($sql, array $params)
    {
        try {
            $statement = $this->handle()->prepare($sql);
            if (!$statement || $statement->execute(self::bindable($params)) === false) {
                $info = $statement ? $statement->errorInfo() : $this->handle()->errorInfo();
                throw new cloudpe_apps_error("HostBill's database refused: {$sql}" . (isset($info[2]) ? ": {$info[2]}" : ''));
            }
            return $statement;
        } catch (PDOException $e) {
            throw new cloudpe_apps_error("HostBill's database refused {$sql}: " . $e->getMessage());
        }
    }

    /**
     * The rows of a prepared SELECT, every value a string (null stays null), as HostBill's own API
     * hands rows: pdo_mysql gives an int column's values as PHP ints from PHP 8.1 on (emulated
     * prepares) and as strings before, so rows read the same on every PHP HostBill runs on.
     *
     * @throws cloudpe_apps_error when there is no handle or the database refuses
     */
    public function select($sql, array $params)
    {
        $statement = $this->execute($sql, $params);
        $rows = $statement->fetchAll(PDO::FETCH_ASSOC);
        $statement->closeCursor();
        if (!is_array($rows)) {
            return array();
        }
        foreach ($rows as $i => $row) {
            foreach ($row as $column => $value) {
                if ($value !== null && !is_string($value)) {
                    $rows[$i][$column] = (string) $value;
                }
            }
        }
        return $rows;
    }

    /** Inserts `$row` (column => value) into `$table`; null, or why it failed (never throws). */
    public function insert($table, array $row)
    {
        $columns = array_keys($row);
        $sql = "INSERT INTO {$table} (`" . implode('`, `', $columns) . '`) VALUES (:' . implode(', :', $columns) . ')';
        $params = array();
        foreach ($row as $column => $value) {
            $params[":{$column}"] = $value;
        }
        try {
            $statement = $this->handle()->prepare($sql);
            if (!$statement || $statement->execute(self::bindable($params)) === false) {
                $info = $statement ? $statement->errorInfo() : $this->handle()->errorInfo();
                return isset($info[2]) ? (string) $info[2] : 'the insert was refused';
            }
            return null;
        } catch (\Throwable $e) {
            return $e->getMessage();
        }
    }

    /**
     * Runs `$work($this)` in one transaction when the handle can open one (none is open yet:
     * HostBill's own stays HostBill's, and its commit is then the one that counts); a Throwable
     * rolls it back and is thrown again.
     *
     * @throws cloudpe_apps_error
     */
    public function transaction($work)
    {
        $handle = $this->handle();
        $own = $handle instanceof PDO && !$handle->inTransaction();
        if ($own && !$handle->beginTransaction()) {
            throw new cloudpe_apps_error("HostBill's database did not open a transaction");
        }
        try {
            $result = call_user_func($work, $this);
            if ($own && !$handle->commit()) {
                throw new cloudpe_apps_error("HostBill's database did not commit");
            }
            return $result;
        } catch (\Throwable $e) {
            if ($own && $handle->inTransaction()) {
                $handle->rollBack();
            }
            throw $e;
        }
    }

    /** `$params` with each string as HostBill's three-byte utf8 columns hold it. */
    private static function bindable(array $params)
    {
        foreach ($params as $name => $value) {
            if (is_string($value)) {
                $params[$name] = cloudpe_text::column($value);
            }
        }
        return $params;
    }

    private function handle()
    {
        if ($this->handle === null && class_exists('HBRegistry')) {
            $this->handle = HBRegistry::db();
        }
        if (!is_object($this->handle)) {
            throw new cloudpe_apps_error('HostBill gave the module no database handle (HBRegistry::db())');
        }
        return $this->handle;
    }
}
