<?php

/**
 * The module options of one App's products, read once per task (the reconciliation, the daily
 * sync) for every account at once: product id => option name => value, from HostBill's product
 * table (cloudpe_apps::productOptions, where the inference is named), and which product an
 * account has. The one option the module compares is "CloudPe group".
 */
class cloudpe_products
{
    /** The product option naming the CloudPe group of the product's accounts. */
    const GROUP_OPTION = 'CloudPe group';
    /** What the host takes of a product's options (docs/cli.md): how many, name and value bytes. */
    const MAX_OPTIONS = 64;
    const MAX_NAME_BYTES = 255;
    const MAX_VALUE_BYTES = 4096;

    /** @var array<string, array<string, string>> product id => name => value */
    private $options;
    /** @var string[] why some products' options could not be read */
    private $problems;
    /** @var string[] which options are not sent to the module (see fit) */
    private $leftOut = array();
    /** @var cloudpe_apps|null */
    private $apps;
    /** @var string */
    private $serverId;
    /** @var array<string, string>|null account id => product id, for rows without product_id (read once, when needed) */
    private $byAccount = null;

    private function __construct(array $options, array $problems, $apps, $serverId)
    {
        $this->options = $options;
        $this->problems = $problems;
        $this->apps = $apps;
        $this->serverId = (string) $serverId;
    }

    /**
     * The module's products for App `$serverId`. A HostBill without this module's row (the module
     * not activated: no product can use it) has none; a table HostBill refuses to read is named
     * in problems() and leaves no product known, never failing the task.
     */
    public static function load(cloudpe $module, cloudpe_apps $apps, $serverId)
    {
        try {
            $apps->moduleId();
        } catch (cloudpe_apps_error $e) {
            return new self(array(), array(), $apps, $serverId);
        }
        try {
            $unreadable = array();
            $options = $apps->productOptions($module->productOptionNames(), $unreadable);
            $leftOut = array();
            foreach ($options as $product => $values) {
                $options[$product] = self::fit((string) $product, $values, $leftOut);
            }
            $products = new self($options, array_values($unreadable), $apps, $serverId);
            $products->leftOut = $leftOut;
            return $products;
        } catch (cloudpe_apps_error $e) {
            return new self(array(), array('the products\' module options could not be read: ' . $module->scrub($e->getMessage())), $apps, $serverId);
        }
    }

    /** Products from `$options` (product id => name => value), for tests and callers that read them elsewhere. */
    public static function of(array $options, $apps = null, $serverId = '')
    {
        return new self($options, array(), $apps, $serverId);
    }

    /** Why some products' options are unknown (each an admin-readable phrase). */
    public function problems()
    {
        return $this->problems;
    }

    /** Which options of the products are not sent to the module, and why (the reconciliation's line). */
    public function leftOut()
    {
        return $this->leftOut;
    }

    /** Whether any product of the module names a CloudPe group. */
    public function anyGroup()
    {
        foreach ($this->options as $options) {
            if (self::groupIn($options) !== null) {
                return true;
            }
        }
        return false;
    }

    /** The module options of account row `$row`'s product (empty when unknown). */
    public function optionsOf(array $row)
    {
        $product = $this->productIdOf($row);
        return $product !== null && isset($this->options[$product]) ? $this->options[$product] : array();
    }

    /** The CloudPe group account row `$row`'s product names, or null when it names none. */
    public function groupOf(array $row)
    {
        return self::groupIn($this->optionsOf($row));
    }

    /**
     * The product of account row `$row`: its `product_id`, or, for a HostBill whose getAccounts
     * rows carry none, the one getAccounts lists it under (read once for every product).
     *
     * @throws cloudpe_apps_error when HostBill refuses that listing
     */
    public function productIdOf(array $row)
    {
        if (isset($row['product_id']) && is_scalar($row['product_id']) && (string) $row['product_id'] !== '') {
            return (string) $row['product_id'];
        }
        if (!$this->options || $this->apps === null || !isset($row['id'])) {
            return null;
        }
        if ($this->byAccount === null) {
            $this->byAccount = $this->apps->productOfAccounts($this->serverId, array_keys($this->options));
        }
        $id = (string) $row['id'];
        return isset($this->byAccount[$id]) ? $this->byAccount[$id] : null;
    }

    /**
     * `$options` as the host takes them: blank names, names over MAX_NAME_BYTES and values over
     * MAX_VALUE_BYTES left out, at most MAX_OPTIONS (the CloudPe group first), each left-out
     * option named in `$problems`, so one odd product never fails a whole App's task.
     */
    private static function fit($product, array $options, array &$problems)
    {
        $kept = array();
        if (isset($options[self::GROUP_OPTION])) {
            $options = array(self::GROUP_OPTION => $options[self::GROUP_OPTION]) + $options;
        }
        foreach ($options as $name => $value) {
            $name = (string) $name;
            $why = null;
            if (trim($name) === '') {
                $why = 'an option without a name';
            } elseif (strlen($name) > self::MAX_NAME_BYTES) {
                $why = 'an option whose name is longer than ' . self::MAX_NAME_BYTES . ' bytes';
            } elseif (strlen((string) $value) > self::MAX_VALUE_BYTES) {
                $why = 'option "' . cloudpe_text::html($name) . '", whose value is longer than ' . self::MAX_VALUE_BYTES . ' bytes';
            } elseif (count($kept) >= self::MAX_OPTIONS) {
                $why = 'options past the first ' . self::MAX_OPTIONS;
            }
            if ($why !== null) {
                $problems[] = "product #{$product}: {$why} not sent to the module";
                if (count($kept) >= self::MAX_OPTIONS) {
                    break;
                }
                continue;
            }
            $kept[$name] = (string) $value;
        }
        return $kept;
    }

    /** The non-empty "CloudPe group" of `$options`, or null. */
    private static function groupIn(array $options)
    {
        $group = isset($options[self::GROUP_OPTION]) ? trim((string) $options[self::GROUP_OPTION]) : '';
        return $group === '' ? null : $group;
    }
}
