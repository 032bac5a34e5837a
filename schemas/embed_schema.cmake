# Writes the schema file IN as a C++ raw string constant into OUT.
file(READ ${IN} text)
file(WRITE ${OUT} "// Generated from events.fbs by the build. Do not edit.\n#pragma once\nnamespace hfe::schema {\ninline constexpr const char kEventsSchemaText[] = R\"hfefbs(${text})hfefbs\";\n}\n")
