# Writes the schema file IN (and IN2, the snapshot schema) as C++ raw string constants into OUT.
file(READ ${IN} text)
file(READ ${IN2} text2)
file(WRITE ${OUT} "// Generated from events.fbs and snapshot.fbs by the build. Do not edit.\n#pragma once\nnamespace hfe::schema {\ninline constexpr const char kEventsSchemaText[] = R\"hfefbs(${text})hfefbs\";\ninline constexpr const char kSnapshotSchemaText[] = R\"hfefbs(${text2})hfefbs\";\n}\n")
