<?php

/**
 * The module with a product option "CloudPe group", as HostBill's devkit declares a loadable
 * option (class.advancedexample.php: `'option1' => ['name' => ..., 'type' => 'loadable',
 * 'default' => <method>]`). The tests' own declaration, so they hold whatever key the shipped
 * module gives the option.
 */
class cloudpe_with_group_option extends cloudpe
{
    protected $options = array(
        'option1' => array('name' => 'CloudPe group', 'value' => false, 'type' => 'loadable', 'default' => 'getGroups'),
    );
}
